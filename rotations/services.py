"""Roster writes. Keyword-only; each validates, saves and records an AuditEntry.

Validation errors are `django.core.exceptions.ValidationError` with a field -> messages dict, so the
API and admin show them against the right field. Permission checks are the caller's.
"""

from __future__ import annotations

import enum
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from rotations.models import (
    AuditEntry,
    Exclusion,
    Membership,
    Override,
    Rotation,
    RotationEra,
    RotationParticipant,
    Team,
)
from rotations.models.roster import new_token

# A definition change "from now" submitted a little late must not be refused.
PAST_TOLERANCE = timedelta(minutes=5)
MAX_POSITIONS = 5


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


# --------------------------------------------------------------------------- after a change

# Roster-change notices: every write enqueues the (idempotent, concurrency-safe) notice run this long
# after its commit, at most once per window, so a burst of edits (new era, then an override) reaches
# people as one notice instead of several. The 5-minute beat stays the safety net if the broker is down.
NOTICE_DELAY_SECONDS = 60
_NOTICE_QUEUED_KEY = "rotations:roster-change-notices-queued"


def _after_change_enqueue(team_ids: list[int]) -> None:
    from rotations import tasks

    tasks.roster_gap_check_teams.apply_async(args=[team_ids])
    if cache.add(_NOTICE_QUEUED_KEY, 1, timeout=NOTICE_DELAY_SECONDS):
        tasks.roster_change_notices.apply_async(countdown=NOTICE_DELAY_SECONDS)


def roster_changed(*, team_ids) -> None:
    """After the current transaction commits: gap check for `team_ids` and a prompt notice run (Celery).

    robust: a broker outage must not fail the edit; the hourly gap check and the 5-minute notice beat
    catch up.
    """
    ids = sorted({t for t in team_ids if t is not None})
    if ids:
        transaction.on_commit(lambda: _after_change_enqueue(ids), robust=True)


def _user_roster_team_ids(user_id: int) -> set[int]:
    """Teams whose schedule can depend on this person: in one of their rotations, or taking an override."""
    return set(
        Rotation.objects.filter(
            Q(eras__participant_links__user_id=user_id) | Q(overrides__user_id=user_id)
        ).values_list("team_id", flat=True)
    )


# --------------------------------------------------------------------------- audit


def _jsonable(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """{field: [old, new]} for the fields whose JSON form changed."""
    out = {}
    for key in sorted(set(before) | set(after)):
        old, new = _jsonable(before.get(key)), _jsonable(after.get(key))
        if old != new:
            out[key] = [old, new]
    return out


def audit_record(*, actor, team: Team | None, action: str, obj: models.Model, changes: dict[str, list]) -> AuditEntry:
    """Append one audit row. `changes` is {field: [old, new]} (JSON-able; model instances become ids)."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        team=team,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes={k: _jsonable(v) for k, v in changes.items()},
    )


# --------------------------------------------------------------------------- validation


def validate_time_zone(name: str, field: str = "time_zone") -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError({field: [f"Unknown time zone {name!r} (use an IANA name like Europe/Berlin)."]}) from None
    return name


def validate_positions(positions: Any) -> list[str]:
    if not isinstance(positions, list | tuple) or not positions:
        raise ValidationError({"positions": ["Give 1 to 5 position names."]})
    names = []
    for p in positions:
        if not isinstance(p, str) or not p.strip() or len(p.strip()) > 40:
            raise ValidationError({"positions": ["Position names are non-empty text of at most 40 characters."]})
        names.append(p.strip())
    if len(names) > MAX_POSITIONS:
        raise ValidationError({"positions": [f"At most {MAX_POSITIONS} positions."]})
    if len(set(names)) != len(names):
        raise ValidationError({"positions": ["Position names must be unique."]})
    return names


def _parse_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    return time.fromisoformat(str(value))


def validate_windows(windows: Any) -> list[dict]:
    """Normalise restriction windows to [{"weekday": None|0-6, "start": "HH:MM", "end": "HH:MM"}]."""
    if windows in (None, ""):
        return []
    if not isinstance(windows, list | tuple):
        raise ValidationError({"restrictions": ["Restrictions are a list of windows."]})
    out = []
    for index, w in enumerate(windows):
        where = f"Window {index + 1}"
        if not isinstance(w, dict):
            raise ValidationError({"restrictions": [f"{where}: expected an object with start, end, weekday."]})
        weekday = w.get("weekday")
        if weekday is not None and (not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6):
            raise ValidationError({"restrictions": [f"{where}: weekday is 0 (Monday) to 6 (Sunday) or null."]})
        try:
            start, end = _parse_time(w.get("start")), _parse_time(w.get("end"))
        except (TypeError, ValueError):
            raise ValidationError({"restrictions": [f"{where}: start and end are times like 08:00."]}) from None
        if start == end:
            raise ValidationError({"restrictions": [f"{where}: start and end must differ."]})
        out.append({"weekday": weekday, "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")})
    return out


def validate_span(start: datetime, end: datetime) -> None:
    errors = {}
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime) or timezone.is_naive(value):
            errors[name] = ["Give a date and time with a time zone."]
    if errors:
        raise ValidationError(errors)
    if end <= start:
        raise ValidationError({"end": ["End must be after start."]})


def _validate_era_fields(*, shift_unit: str, shift_length: int) -> None:
    if shift_unit not in RotationEra.Unit.values:
        raise ValidationError({"shift_unit": [f"Choose one of {', '.join(RotationEra.Unit.values)}."]})
    if not isinstance(shift_length, int) or isinstance(shift_length, bool) or not 1 <= shift_length <= 1000:
        raise ValidationError({"shift_length": ["Shift length is a whole number from 1."]})


def _validate_participants(participants: Any) -> list:
    people = list(participants or [])
    ids = [p.pk for p in people]
    if len(set(ids)) != len(ids):
        raise ValidationError({"participants": ["A person can appear only once in a rotation."]})
    return people


# --------------------------------------------------------------------------- teams


def _team_state(team: Team) -> dict[str, Any]:
    return {
        "name": team.name,
        "slug": team.slug,
        "description": team.description,
        "time_zone": team.time_zone,
        "handover_email": team.handover_email,
        "escalation_policy": team.escalation_policy_id,
    }


@transaction.atomic
def team_create(
    *,
    name: str,
    actor,
    slug: str = "",
    time_zone: str = "UTC",
    description: str = "",
    handover_email: str = "",
    escalation_policy=None,
) -> Team:
    validate_time_zone(time_zone)
    team = Team(
        name=name,
        slug=slug or slugify(name),
        time_zone=time_zone,
        description=description,
        handover_email=handover_email,
        escalation_policy=escalation_policy,
    )
    team.full_clean(exclude=["ical_token"])
    team.save()
    audit_record(actor=actor, team=team, action=AuditEntry.Action.CREATE, obj=team, changes=diff({}, _team_state(team)))
    return team


@transaction.atomic
def team_update(
    *,
    team: Team,
    actor,
    name: str | _Unset = UNSET,
    slug: str | _Unset = UNSET,
    time_zone: str | _Unset = UNSET,
    description: str | _Unset = UNSET,
    handover_email: str | _Unset = UNSET,
    escalation_policy: Any = UNSET,
) -> Team:
    before = _team_state(team)
    if time_zone is not UNSET:
        validate_time_zone(time_zone)
    for attr, value in (
        ("name", name),
        ("slug", slug),
        ("time_zone", time_zone),
        ("description", description),
        ("handover_email", handover_email),
        ("escalation_policy", escalation_policy),
    ):
        if value is not UNSET:
            setattr(team, attr, value)
    team.full_clean(exclude=["ical_token"])
    changes = diff(before, _team_state(team))
    if changes:
        team.save()
        audit_record(actor=actor, team=team, action=AuditEntry.Action.UPDATE, obj=team, changes=changes)
    return team


@transaction.atomic
def team_ical_token_rotate(*, team: Team, actor) -> str:
    """Invalidate the team's feed URL; returns the new token."""
    team.ical_token = new_token()
    team.save(update_fields=["ical_token"])
    audit_record(
        actor=actor,
        team=team,
        action=AuditEntry.Action.UPDATE,
        obj=team,
        changes={"ical_token": ["(old)", "(rotated)"]},
    )
    return team.ical_token


@transaction.atomic
def user_ical_token_rotate(*, user, actor) -> str:
    """Invalidate the user's personal feed URL; returns the new token."""
    user.ical_token = new_token()
    user.save(update_fields=["ical_token"])
    audit_record(
        actor=actor,
        team=None,
        action=AuditEntry.Action.UPDATE,
        obj=user,
        changes={"ical_token": ["(old)", "(rotated)"]},
    )
    return user.ical_token


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
    }


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
    from rotations.selectors import era_anchor

    validate_time_zone(time_zone)
    positions = validate_positions(positions)
    restrictions = validate_windows(restrictions)
    _validate_era_fields(shift_unit=shift_unit, shift_length=shift_length)
    participants = _validate_participants(participants)
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
    the handoff rhythm; the participant cycle continues by shift index. Only staff may backdate
    beyond PAST_TOLERANCE (it rewrites history people may have relied on).
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
    after = _era_state(era, new["participants"])
    changes = diff(before, after)
    audit_record(actor=actor, team=rotation.team, action=action, obj=era, changes=changes)
    roster_changed(team_ids=[rotation.team_id])
    return era


# --------------------------------------------------------------------------- exclusions


def _exclusion_state(x: Exclusion) -> dict[str, Any]:
    return {"user": x.user_id, "start": x.start, "end": x.end, "kind": x.kind, "reason": x.reason}


def _audit_for_user_teams(*, user_id: int, actor, action: str, obj, changes: dict) -> None:
    """Exclusions belong to a person: log them in each of the person's teams (or team-less)."""
    teams = list(Team.objects.filter(memberships__user_id=user_id))
    for team in teams or [None]:
        audit_record(actor=actor, team=team, action=action, obj=obj, changes=changes)


@transaction.atomic
def exclusion_create(
    *, user, start: datetime, end: datetime, kind: str = Exclusion.Kind.VACATION, reason: str = "", actor
) -> Exclusion:
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
    _audit_for_user_teams(
        user_id=exclusion.user_id,
        actor=actor,
        action=AuditEntry.Action.DELETE,
        obj=exclusion,
        changes=diff(_exclusion_state(exclusion), {}),
    )
    roster_changed(team_ids=_user_roster_team_ids(exclusion.user_id))
    exclusion.delete()


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


# --------------------------------------------------------------------------- team members (portal page)
#
# The portal's member page uses these guarded writes. Guard rails, decided here so the page, tests
# and any later caller agree (staff included: a clear refusal beats an orphaned team or a roster
# that pages someone who is no longer there):
# - a team with members keeps at least one manager: the last manager cannot be removed or demoted
#   while anyone else is in the team (make someone else a manager first). Removing the very last
#   member is allowed.
# - a person the team's schedule or policies still depend on (a participant of a rotation's current
#   or a future definition, the taker of an override that has not ended, a target named in an
#   escalation step) cannot be removed or made a viewer; the error names what to change first.


def _role_label(role: str) -> str:
    return Membership.Role(role).label


def membership_dependents(*, team: Team, user, now: datetime) -> list[str]:
    """What still needs `user` as an on-call member of `team`, in words ("rotation Weekly"); [] = nothing.

    Four queries whatever the roster's size.
    """
    from escalations.models import EscalationTarget

    eras = list(RotationEra.objects.filter(rotation__team=team).values_list("pk", "rotation_id", "effective_from"))
    current: dict[int, tuple[datetime, int]] = {}
    relevant: set[int] = set()
    for era_id, rotation_id, effective_from in eras:
        if effective_from > now:
            relevant.add(era_id)  # a definition still to come
        elif rotation_id not in current or effective_from > current[rotation_id][0]:
            current[rotation_id] = (effective_from, era_id)
    relevant |= {era_id for _, era_id in current.values()}
    out = []
    rotations = sorted(
        set(
            RotationParticipant.objects.filter(era_id__in=relevant, user=user).values_list(
                "era__rotation__name", flat=True
            )
        )
    )
    out += [f"rotation {name}" for name in rotations]
    overrides = sorted(
        set(
            Override.objects.filter(rotation__team=team, user=user, end__gt=now).values_list(
                "rotation__name", flat=True
            )
        )
    )
    out += [f"an override in rotation {name} that has not ended" for name in overrides]
    steps = sorted(
        set(
            EscalationTarget.objects.filter(
                step__policy__team=team, kind=EscalationTarget.Kind.USER, user=user
            ).values_list("step__policy__name", "step__order")
        )
    )
    out += [f"escalation policy {name}, step {order + 1}" for name, order in steps]
    return out


def _last_manager_check(*, membership: Membership, verb: str) -> None:
    """Refuse when `membership` is the team's only manager and other people are in the team."""
    if membership.role != Membership.Role.MANAGER:
        return
    # Lock the team's managers so two managers demoting each other at once cannot both succeed.
    managers = list(
        Membership.objects.select_for_update()
        .filter(team_id=membership.team_id, role=Membership.Role.MANAGER)
        .values_list("pk", flat=True)
    )
    others = Membership.objects.filter(team_id=membership.team_id).exclude(pk=membership.pk).exists()
    if managers == [membership.pk] and others:
        raise ValidationError(
            {
                "role": [
                    f"{membership.user.display_name} is the last manager of {membership.team}: make someone else a "
                    f"manager before you {verb} them, or the team is left with nobody to manage it."
                ]
            }
        )


def _dependents_check(*, membership: Membership, now: datetime, verb: str) -> None:
    needs = membership_dependents(team=membership.team, user=membership.user, now=now)
    if needs:
        raise ValidationError(
            {
                "user": [
                    f"Cannot {verb} {membership.user.display_name}: {membership.team} still depends on them in "
                    f"{'; '.join(needs)}. Change that first."
                ]
            }
        )


@transaction.atomic
def membership_create(*, team: Team, user, role: str, actor) -> Membership:
    """Add `user` to `team` with `role`; refuses someone who is already a member."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of {', '.join(Membership.Role.values)}."]})
    if not user.is_active:
        raise ValidationError({"user": [f"{user.display_name} is deactivated and cannot join a team."]})
    existing = Membership.objects.filter(team=team, user=user).first()
    if existing is not None:
        raise ValidationError(
            {
                "user": [
                    f"{user.display_name} is already in {team} as {_role_label(existing.role).lower()}; "
                    f"change their role in the list instead."
                ]
            }
        )
    try:
        # Savepoint: a concurrent add of the same person wins the unique constraint; this one is told, not a 500.
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=user, role=role)
    except IntegrityError:
        raise ValidationError({"user": [f"{user.display_name} was just added to {team} by someone else."]}) from None
    audit_record(
        actor=actor,
        team=team,
        action=AuditEntry.Action.CREATE,
        obj=membership,
        changes={"user": [None, user.pk], "role": [None, role]},
    )
    roster_changed(team_ids=[team.pk])
    return membership


@transaction.atomic
def membership_update(*, membership: Membership, role: str, actor, now: datetime) -> Membership:
    """Change a member's role, keeping a manager and never making an on-call person a viewer."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of {', '.join(Membership.Role.values)}."]})
    membership = Membership.objects.select_for_update(of=("self",)).select_related("team", "user").get(pk=membership.pk)
    old = membership.role
    if old == role:
        return membership
    if role != Membership.Role.MANAGER:
        _last_manager_check(membership=membership, verb="demote")
    if role == Membership.Role.VIEWER:
        # Viewers cannot act on incidents, so they must not be the ones paged.
        _dependents_check(membership=membership, now=now, verb="make a viewer of")
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        team=membership.team,
        action=AuditEntry.Action.UPDATE,
        obj=membership,
        changes={"role": [old, role]},
    )
    roster_changed(team_ids=[membership.team_id])  # a new manager hears about gaps from now on
    return membership


@transaction.atomic
def membership_delete(*, membership: Membership, actor, now: datetime) -> None:
    """Take a member out of the team, unless the team would lose its last manager or still depends on them."""
    membership = Membership.objects.select_for_update(of=("self",)).select_related("team", "user").get(pk=membership.pk)
    _last_manager_check(membership=membership, verb="remove")
    _dependents_check(membership=membership, now=now, verb="remove")
    audit_record(
        actor=actor,
        team=membership.team,
        action=AuditEntry.Action.DELETE,
        obj=membership,
        changes={"user": [membership.user_id, None], "role": [membership.role, None]},
    )
    roster_changed(team_ids=[membership.team_id])
    membership.delete()
