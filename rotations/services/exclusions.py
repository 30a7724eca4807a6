"""Exclusions (time off): create, update, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from portal.permissions import can_manage_exclusion_for
from rotations.audit import audit_record, diff
from rotations.models import (
    AuditEntry,
    Exclusion,
    Team,
)
from rotations.services.hooks import UNSET, _Unset, _user_roster_team_ids, roster_changed
from rotations.services.validation import validate_span

# --------------------------------------------------------------------------- exclusions


def _exclusion_state(x: Exclusion) -> dict[str, Any]:
    return {"user": x.user_id, "start": x.start, "end": x.end, "kind": x.kind, "reason": x.reason}


def _audit_for_user_teams(*, user_id: int, actor, action: str, obj, changes: dict) -> None:
    """Exclusions belong to a person: log them in each of the person's teams (or team-less)."""
    teams = list(Team.objects.filter(memberships__user_id=user_id))
    for team in teams or [None]:
        audit_record(actor=actor, team=team, action=action, obj=obj, changes=changes)


def _exclusion_actor_check(*, actor: Any, subject: Any) -> None:
    """An exclusion reroutes every roster the person is on: only they, staff, or a manager of all of
    their teams may change it (None: the system itself)."""
    if actor is not None and not can_manage_exclusion_for(actor, subject):
        raise PermissionDenied(
            "You can manage your own exclusions; managers those of people all of whose teams they manage."
        )


@transaction.atomic
def exclusion_create(
    *, user, start: datetime, end: datetime, kind: str = Exclusion.Kind.VACATION, reason: str = "", actor
) -> Exclusion:
    _exclusion_actor_check(actor=actor, subject=user)
    validate_span(start, end)
    if kind not in Exclusion.Kind.values:
        raise ValidationError({"kind": [f"Choose one of {', '.join(Exclusion.Kind.values)}."]})
    exclusion = Exclusion.objects.create(
        user=user, start=start, end=end, kind=kind, reason=reason or "", created_by=actor
    )
    _audit_for_user_teams(
        user_id=user.pk,
        actor=actor,
        action=AuditEntry.Action.CREATE,
        obj=exclusion,
        changes=diff({}, _exclusion_state(exclusion)),
    )
    roster_changed(team_ids=_user_roster_team_ids(user.pk))
    return exclusion


@transaction.atomic
def exclusion_update(
    *,
    exclusion: Exclusion,
    actor,
    start: datetime | _Unset = UNSET,
    end: datetime | _Unset = UNSET,
    kind: str | _Unset = UNSET,
    reason: str | _Unset = UNSET,
) -> Exclusion:
    _exclusion_actor_check(actor=actor, subject=exclusion.user)
    before = _exclusion_state(exclusion)
    for attr, value in (("start", start), ("end", end), ("kind", kind), ("reason", reason)):
        if value is not UNSET:
            setattr(exclusion, attr, value)
    validate_span(exclusion.start, exclusion.end)
    if exclusion.kind not in Exclusion.Kind.values:
        raise ValidationError({"kind": [f"Choose one of {', '.join(Exclusion.Kind.values)}."]})
    changes = diff(before, _exclusion_state(exclusion))
    if changes:
        exclusion.save()
        _audit_for_user_teams(
            user_id=exclusion.user_id, actor=actor, action=AuditEntry.Action.UPDATE, obj=exclusion, changes=changes
        )
        roster_changed(team_ids=_user_roster_team_ids(exclusion.user_id))
    return exclusion


@transaction.atomic
def exclusion_delete(*, exclusion: Exclusion, actor) -> None:
    _exclusion_actor_check(actor=actor, subject=exclusion.user)
    _audit_for_user_teams(
        user_id=exclusion.user_id,
        actor=actor,
        action=AuditEntry.Action.DELETE,
        obj=exclusion,
        changes=diff(_exclusion_state(exclusion), {}),
    )
    roster_changed(team_ids=_user_roster_team_ids(exclusion.user_id))
    exclusion.delete()
