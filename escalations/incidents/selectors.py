"""Incident reads shared with the portal and the intake."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count

from escalations.models import Incident
from rotations.models import Team

Status = Incident.Status

# -------------------------------------------------------------------------------- trigger


def incident_open_get(*, team: Team, dedup_key: str) -> Incident | None:
    if not dedup_key:
        return None
    return Incident.objects.filter(team=team, dedup_key=dedup_key).exclude(status=Status.RESOLVED).first()


def incidents_open_count_by_team(team_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        Incident.objects.filter(team_id__in=list(team_ids))
        .exclude(status=Status.RESOLVED)
        .values("team_id")
        .annotate(n=Count("id"))
    )
    return {row["team_id"]: row["n"] for row in rows}
