"""Incident reads shared with the portal and the intake."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count

from escalations.models import ChangeEvent, Incident
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


# ---------------------------------------------------------------------------- change events

# A change this long before an incident opened may explain it (PagerDuty shows "recent changes" alike).
CHANGE_LOOKBACK = timedelta(minutes=30)
CHANGES_SHOWN = 10
TIMELINE_DAYS = 7
TIMELINE_EACH = 25


def incident_recent_changes_get(*, incident: Incident, limit: int = CHANGES_SHOWN) -> list[ChangeEvent]:
    """The team's change events in the CHANGE_LOOKBACK before the incident opened, newest first."""
    opened = incident.created_at
    return list(
        ChangeEvent.objects.filter(
            team_id=incident.team_id, timestamp__gte=opened - CHANGE_LOOKBACK, timestamp__lte=opened
        )
        .select_related("integration")
        .order_by("-timestamp", "-id")[:limit]
    )


@dataclass
class TimelineItem:
    at: datetime
    incident: Incident | None = None
    change: ChangeEvent | None = None
    explains: list[Incident] = field(default_factory=list)  # change: incidents opened soon after it
    changes_before: int = 0  # incident: changes in the CHANGE_LOOKBACK before it


def team_timeline_get(*, team: Team, now: datetime, days: int = TIMELINE_DAYS) -> list[TimelineItem]:
    """The team's incidents and change events of the last `days`, newest first (at most TIMELINE_EACH of
    each), every change next to the incidents opened within CHANGE_LOOKBACK after it."""
    since = now - timedelta(days=days)
    incidents = list(
        Incident.objects.filter(team=team, created_at__gte=since, created_at__lte=now)
        .only("pk", "title", "status", "urgency", "created_at", "team_id")
        .order_by("-created_at", "-id")[:TIMELINE_EACH]
    )
    changes = list(
        ChangeEvent.objects.filter(team=team, timestamp__gte=since, timestamp__lte=now)
        .select_related("integration")
        .order_by("-timestamp", "-id")[:TIMELINE_EACH]
    )
    items = [TimelineItem(at=i.created_at, incident=i) for i in incidents]
    for change in changes:
        explains = [i for i in incidents if change.timestamp <= i.created_at <= change.timestamp + CHANGE_LOOKBACK]
        items.append(TimelineItem(at=change.timestamp, change=change, explains=explains))
    for item in items:
        if item.incident is not None:
            opened = item.incident.created_at
            item.changes_before = sum(1 for c in changes if opened - CHANGE_LOOKBACK <= c.timestamp <= opened)
    # At one instant the change is listed below the incident: it came first.
    items.sort(key=lambda it: (it.at, it.incident is not None), reverse=True)
    return items
