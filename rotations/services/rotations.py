"""Rotations and their eras: create, update, delete, change the definition from a date."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rotations import schedule
from rotations.audit import audit_record, diff
from rotations.models import (
    AuditEntry,
    Rotation,
    RotationEra,
    RotationParticipant,
    Team,
)
from rotations.selectors import era_anchor, rotation_spec_get
from rotations.services.hooks import UNSET, _Unset, roster_changed
from rotations.services.validation import (
    PAST_TOLERANCE,
    _validate_era_fields,
    _validate_participants,
    team_paging_members_check,
    validate_positions,
    validate_time_zone,
    validate_windows,
)

# --------------------------------------------------------------------------- rotations


def _era_state(era: RotationEra, participants: list | None = None) -> dict[str, Any]:
    if participants is None:
        participants = [link.user_id for link in era.participant_links.order_by("order")]
    return {
        "effective_from": era.effective_from,
        "start_date": era.start_date,
        "handoff_time": era.handoff_time,
        "shift_unit": era.shift_unit,
        "shift_length": era.shift_length,
        "restrictions": era.restrictions,
        "participants": [getattr(p, "pk", p) for p in participants],
        "cycle_offset": era.cycle_offset,
    }


def _cycle_offsets_refresh(*, rotation: Rotation, era: RotationEra, now: datetime) -> None:
    """Continue the participant cycle into `era` and into the definitions still to come after it.

    Later eras that already started keep their offsets: their shifts are history.
    """
    spec = rotation_spec_get(rotation=rotation)
    ids = list(RotationEra.objects.filter(rotation=rotation).order_by("effective_from").values_list("pk", flat=True))
    eras = list(spec.eras)
    for index in range(ids.index(era.pk), len(ids)):
        if ids[index] != era.pk and eras[index].effective_from <= now:
            continue
        offset = schedule.cycle_offset(dataclasses.replace(spec, eras=tuple(eras)), index)
        if offset != eras[index].offset:
            eras[index] = dataclasses.replace(eras[index], offset=offset)
            RotationEra.objects.filter(pk=ids[index]).update(cycle_offset=offset)
    era.cycle_offset = eras[ids.index(era.pk)].offset


def _era_save(
    *,
    rotation: Rotation,
    effective_from: datetime,
    start_date: date,
    handoff_time: time,
    shift_unit: str,
    shift_length: int,
    restrictions: list,
    participants: list,
) -> RotationEra:
    era = RotationEra.objects.create(
        rotation=rotation,
        effective_from=effective_from,
        start_date=start_date,
        handoff_time=handoff_time,
        shift_unit=shift_unit,
        shift_length=shift_length,
        restrictions=restrictions,
    )
    RotationParticipant.objects.bulk_create(
        RotationParticipant(era=era, user=user, order=order) for order, user in enumerate(participants)
    )
    return era


@transaction.atomic
def rotation_create(
    *,
    team: Team,
    name: str,
    time_zone: str,
    positions: list[str],
    start_date: date,
    handoff_time: time,
    shift_unit: str,
    shift_length: int,
    participants: list,
    restrictions: list | None = None,
    actor,
) -> Rotation:
    """A rotation and its first era, which applies from the first handoff on."""
    validate_time_zone(time_zone)
    positions = validate_positions(positions)
    restrictions = validate_windows(restrictions)
    _validate_era_fields(shift_unit=shift_unit, shift_length=shift_length)
    participants = _validate_participants(participants)
    team_paging_members_check(team=team, users=participants, field="participants")
    if not name or not name.strip():
        raise ValidationError({"name": ["Give the rotation a name."]})
    if Rotation.objects.filter(team=team, name=name.strip()).exists():
        raise ValidationError({"name": [f"{team} already has a rotation called {name.strip()!r}."]})
    rotation = Rotation.objects.create(team=team, name=name.strip(), time_zone=time_zone, positions=positions)
    anchor = era_anchor(start_date=start_date, handoff_time=handoff_time, time_zone=time_zone)
    era = _era_save(
        rotation=rotation,
        effective_from=anchor,
        start_date=start_date,
        handoff_time=handoff_time,
        shift_unit=shift_unit,
        shift_length=shift_length,
        restrictions=restrictions,
        participants=participants,
    )
    changes = diff({}, {"name": rotation.name, "time_zone": time_zone, "positions": positions})
    changes.update({f"era.{k}": v for k, v in diff({}, _era_state(era, participants)).items()})
    audit_record(actor=actor, team=team, action=AuditEntry.Action.CREATE, obj=rotation, changes=changes)
    roster_changed(team_ids=[team.pk])
    return rotation


@transaction.atomic
def rotation_update(
    *, rotation: Rotation, actor, name: str | _Unset = UNSET, positions: list[str] | _Unset = UNSET
) -> Rotation:
    """Rename, or change the position names. The time zone is fixed: changing it would move past shifts."""
    before = {"name": rotation.name, "positions": list(rotation.positions)}
    if name is not UNSET:
        name = (name or "").strip()
        if not name:
            raise ValidationError({"name": ["Give the rotation a name."]})
        if Rotation.objects.filter(team_id=rotation.team_id, name=name).exclude(pk=rotation.pk).exists():
            raise ValidationError({"name": [f"{rotation.team} already has a rotation called {name!r}."]})
        rotation.name = name
    if positions is not UNSET:
        rotation.positions = validate_positions(positions)
    changes = diff(before, {"name": rotation.name, "positions": list(rotation.positions)})
    if changes:
        rotation.save(update_fields=["name", "positions"])
        audit_record(actor=actor, team=rotation.team, action=AuditEntry.Action.UPDATE, obj=rotation, changes=changes)
        roster_changed(team_ids=[rotation.team_id])
    return rotation


@transaction.atomic
def rotation_delete(*, rotation: Rotation, actor) -> None:
    audit_record(
        actor=actor,
        team=rotation.team,
        action=AuditEntry.Action.DELETE,
        obj=rotation,
        changes={"name": [rotation.name, None]},
    )
    roster_changed(team_ids=[rotation.team_id])
    rotation.delete()


@transaction.atomic
def rotation_definition_change(
    *,
    rotation: Rotation,
    effective_from: datetime,
    actor,
    participants: list | _Unset = UNSET,
    shift_unit: str | _Unset = UNSET,
    shift_length: int | _Unset = UNSET,
    handoff_time: time | _Unset = UNSET,
    start_date: date | _Unset = UNSET,
    restrictions: list | _Unset = UNSET,
    now: datetime | None = None,
) -> RotationEra:
    """Start a new era at `effective_from`: fields not given carry over from the era then in force.

    Shifts before `effective_from` stay exactly as they were. Keeping start_date/handoff_time keeps
    the handoff rhythm. The participant cycle continues (schedule.cycle_offset): whoever holds or is
    next for the first position at `effective_from` stays so, then the new order applies; a removed
    person's turn passes to the next; definitions still to come are re-aligned the same way. Only
    staff may backdate beyond PAST_TOLERANCE (it rewrites history people may have relied on).
    """
    now = now or timezone.now()
    if not isinstance(effective_from, datetime) or timezone.is_naive(effective_from):
        raise ValidationError({"effective_from": ["Give a date and time with a time zone."]})
    if effective_from < now - PAST_TOLERANCE and not getattr(actor, "is_staff", False):
        raise ValidationError({"effective_from": ["A change cannot take effect in the past."]})
    Rotation.objects.select_for_update().filter(pk=rotation.pk).first()
    eras = list(rotation.eras.prefetch_related("participant_links__user").order_by("effective_from"))
    current = None
    for era in eras:
        if era.effective_from <= effective_from:
            current = era
    if current is None and eras:
        current = eras[0]
    if current is None:
        raise ValidationError({"effective_from": ["This rotation has no definition to change."]})
    old_participants = [link.user for link in current.participant_links.all()]
    before = _era_state(current, old_participants)
    new = {
        "start_date": current.start_date if start_date is UNSET else start_date,
        "handoff_time": current.handoff_time if handoff_time is UNSET else handoff_time,
        "shift_unit": current.shift_unit if shift_unit is UNSET else shift_unit,
        "shift_length": current.shift_length if shift_length is UNSET else shift_length,
        "restrictions": current.restrictions if restrictions is UNSET else validate_windows(restrictions),
        "participants": old_participants if participants is UNSET else _validate_participants(participants),
    }
    _validate_era_fields(shift_unit=new["shift_unit"], shift_length=new["shift_length"])
    if participants is not UNSET:
        team_paging_members_check(team=rotation.team, users=new["participants"], field="participants")
    if current.effective_from == effective_from:
        # Same start: redefine that (future) era in place rather than stacking two at one instant.
        era = current
        for attr in ("start_date", "handoff_time", "shift_unit", "shift_length", "restrictions"):
            setattr(era, attr, new[attr])
        era.save()
        era.participant_links.all().delete()
        RotationParticipant.objects.bulk_create(
            RotationParticipant(era=era, user=u, order=i) for i, u in enumerate(new["participants"])
        )
        action = AuditEntry.Action.UPDATE
    else:
        era = _era_save(rotation=rotation, effective_from=effective_from, **new)
        action = AuditEntry.Action.CREATE
    _cycle_offsets_refresh(rotation=rotation, era=era, now=now)
    after = _era_state(era, new["participants"])
    changes = diff(before, after)
    audit_record(actor=actor, team=rotation.team, action=action, obj=era, changes=changes)
    roster_changed(team_ids=[rotation.team_id])
    return era
