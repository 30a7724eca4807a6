"""Roster writes. Keyword-only; each validates, saves and records an AuditEntry.

Validation errors are `django.core.exceptions.ValidationError` with a field -> messages dict, so the
API and admin show them against the right field. Permission checks are the caller's.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from rotations.audit import audit_record, diff
from rotations.models import (
    AuditEntry,
    Membership,
    Override,
    Rotation,
)
from rotations.services.hooks import UNSET, _Unset, roster_changed
from rotations.services.validation import team_paging_members_check, validate_span

# --------------------------------------------------------------------------- overrides


def _span_text(start: datetime, end: datetime, tz_name: str) -> str:
    tz = zoneinfo.ZoneInfo(tz_name)
    s, e = start.astimezone(tz), end.astimezone(tz)
    if s.date() == e.date():
        return f"{s:%Y-%m-%d} {s:%H:%M}–{e:%H:%M}"
    return f"{s:%Y-%m-%d %H:%M}–{e:%Y-%m-%d %H:%M}"


def override_conflicts_check(
    *,
    rotation: Rotation,
    user,
    start: datetime,
    end: datetime,
    position: str | None,
    replaces_user,
    exclude_pk: int | None = None,
) -> None:
    """Raise ValidationError naming the clashing override, if any.

    Clashes (all within `rotation`, overlapping in time): the same position taken twice; the same
    person's shifts taken twice; the taker already on another override.
    """
    errors: dict[str, list[str]] = {}
    if not position and replaces_user is None:
        errors["position"] = ["Choose a position to take, or a person whose shifts to take."]
    elif position and replaces_user is not None:
        errors["replaces_user"] = ["Take either a position or a person's shifts, not both."]
    if position and position not in rotation.positions:
        errors["position"] = [f"{rotation.name} has no position {position!r} (it has {', '.join(rotation.positions)})."]
    if replaces_user is not None and user is not None and replaces_user.pk == user.pk:
        errors["replaces_user"] = ["Someone cannot take over their own shifts."]
    if errors:
        raise ValidationError(errors)
    validate_span(start, end)

    others = (
        Override.objects.filter(rotation=rotation, start__lt=end, end__gt=start)
        .select_related("user", "replaces_user")
        .order_by("start", "pk")
    )
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    tz = rotation.time_zone
    for other in others:
        span = _span_text(max(start, other.start), min(end, other.end), tz)
        if position and other.position == position:
            raise ValidationError(
                {
                    "position": [
                        f"{other.user} already holds {position} for {rotation.name} {span} via override #{other.pk}."
                    ]
                }
            )
        if replaces_user is not None and other.replaces_user_id == replaces_user.pk:
            raise ValidationError(
                {
                    "replaces_user": [
                        f"{other.user} already takes {replaces_user}'s shifts in {rotation.name} {span} "
                        f"via override #{other.pk}."
                    ]
                }
            )
        if user is not None and other.user_id == user.pk:
            what = other.position or f"{other.replaces_user}'s shifts"
            raise ValidationError(
                {"user": [f"{user} already takes {what} in {rotation.name} {span} via override #{other.pk}."]}
            )


def _override_state(o: Override) -> dict[str, Any]:
    return {
        "rotation": o.rotation_id,
        "user": o.user_id,
        "start": o.start,
        "end": o.end,
        "position": o.position,
        "replaces_user": o.replaces_user_id,
        "reason": o.reason,
    }


def _override_people_check(*, rotation: Rotation, user: Any, replaces_user: Any) -> None:
    """The taker pages for the team, so is one of its engineers or managers; the replaced person is a
    member of the team (None: not being set)."""
    if user is not None:
        team_paging_members_check(team=rotation.team, users=[user], field="user")
    if (
        replaces_user is not None
        and not Membership.objects.filter(team_id=rotation.team_id, user=replaces_user).exists()
    ):
        raise ValidationError({"replaces_user": [f"{replaces_user} is not a member of {rotation.team}."]})


@transaction.atomic
def override_create(
    *,
    rotation: Rotation,
    user,
    start: datetime,
    end: datetime,
    position: str | None = None,
    replaces_user=None,
    reason: str = "",
    actor,
) -> Override:
    _override_people_check(rotation=rotation, user=user, replaces_user=replaces_user)
    # Serialise override writes per rotation so two concurrent requests cannot both pass the check.
    Rotation.objects.select_for_update().filter(pk=rotation.pk).first()
    override_conflicts_check(
        rotation=rotation, user=user, start=start, end=end, position=position, replaces_user=replaces_user
    )
    override = Override.objects.create(
        rotation=rotation,
        user=user,
        start=start,
        end=end,
        position=position or "",
        replaces_user=replaces_user,
        reason=reason or "",
        created_by=actor,
    )
    audit_record(
        actor=actor,
        team=rotation.team,
        action=AuditEntry.Action.CREATE,
        obj=override,
        changes=diff({}, _override_state(override)),
    )
    roster_changed(team_ids=[rotation.team_id])
    return override


@transaction.atomic
def override_update(
    *,
    override: Override,
    actor,
    user: Any = UNSET,
    start: datetime | _Unset = UNSET,
    end: datetime | _Unset = UNSET,
    position: str | None | _Unset = UNSET,
    replaces_user: Any = UNSET,
    reason: str | _Unset = UNSET,
) -> Override:
    rotation = override.rotation
    _override_people_check(
        rotation=rotation,
        user=None if user is UNSET else user,
        replaces_user=None if replaces_user is UNSET else replaces_user,
    )
    Rotation.objects.select_for_update().filter(pk=rotation.pk).first()
    before = _override_state(override)
    for attr, value in (
        ("user", user),
        ("start", start),
        ("end", end),
        ("replaces_user", replaces_user),
        ("reason", reason),
    ):
        if value is not UNSET:
            setattr(override, attr, value)
    if position is not UNSET:
        override.position = position or ""
    override_conflicts_check(
        rotation=rotation,
        user=override.user,
        start=override.start,
        end=override.end,
        position=override.position or None,
        replaces_user=override.replaces_user,
        exclude_pk=override.pk,
    )
    changes = diff(before, _override_state(override))
    if changes:
        override.save()
        audit_record(actor=actor, team=rotation.team, action=AuditEntry.Action.UPDATE, obj=override, changes=changes)
        roster_changed(team_ids=[rotation.team_id])
    return override


@transaction.atomic
def override_delete(*, override: Override, actor) -> None:
    audit_record(
        actor=actor,
        team=override.rotation.team,
        action=AuditEntry.Action.DELETE,
        obj=override,
        changes=diff(_override_state(override), {}),
    )
    override.delete()
    roster_changed(team_ids=[override.rotation.team_id])
