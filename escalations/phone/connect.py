"""Connect me now: ring the line's targets in order and put a call someone took on record.

The line lists positions (whoever holds one now) and named members; each is rung on a verified voice
number. A call an engineer took opens or joins the caller's incident, acknowledged by that engineer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from escalations.incidents import selectors as incidents_selectors
from escalations.incidents import services, timeline
from escalations.models import (
    CallRecord,
    Incident,
    TimelineEvent,
)
from escalations.monitoring import metrics
from escalations.phone.records import (
    connect_attempts_describe,
    duration_parse,
    record_event_add,
    record_incident_payload,
    record_lock,
    record_policy,
)
from escalations.phone.selectors import (
    call_team,
    caller_label,
)
from portal.models import ContactMethod, User
from rotations.models import Membership, Rotation, Team
from rotations.selectors import team_oncall_users

Outcome = CallRecord.Outcome


@dataclass(frozen=True)
class ConnectTarget:
    position: str  # the position the person holds, or "" for a person named on the line
    user: User
    number: str


def _target_error(index: int, message: str) -> ValidationError:
    return ValidationError(f"Connect target {index + 1}: {message}", code="invalid")


def phone_line_connect_targets_validate(*, team: Team, targets: Any) -> list[dict[str, str | int]]:
    """The line's connect-now targets, cleaned: each {"position": name} of one of the team's rotations or
    {"user": id} of a member of the team; in order, at least one, no repeats. ValidationError otherwise."""
    if not isinstance(targets, list) or not targets:
        raise ValidationError('Give a list of targets, e.g. [{"position": "primary"}, {"user": 12}].', code="invalid")
    positions: set[str] = set()
    for rotation_positions in Rotation.objects.filter(team=team).values_list("positions", flat=True):
        positions.update(p for p in rotation_positions or [] if isinstance(p, str))
    members = set(Membership.objects.filter(team=team).values_list("user_id", flat=True))
    cleaned: list[dict[str, str | int]] = []
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or len(target) != 1:
            raise _target_error(index, 'use {"position": "<name>"} or {"user": <id>}.')
        ((key, value),) = target.items()
        if key == "position":
            if not isinstance(value, str) or value not in positions:
                known = ", ".join(sorted(positions)) or "none"
                raise _target_error(index, f"{value!r} is not a position of {team.name}'s rotations ({known}).")
            entry: dict[str, str | int] = {"position": value}
        elif key == "user":
            if isinstance(value, bool) or not isinstance(value, int) or value not in members:
                raise _target_error(index, f"{value!r} is not a member of {team.name}.")
            entry = {"user": value}
        else:
            raise _target_error(index, f"unknown kind {key!r}: use position or user.")
        if entry in cleaned:
            raise _target_error(index, "listed twice.")
        cleaned.append(entry)
    return cleaned


def _voice_number(user: User) -> str | None:
    method = (
        ContactMethod.objects.filter(user=user, kind=ContactMethod.Kind.VOICE, verified_at__isnull=False)
        .order_by("id")
        .first()
    )
    return method.value if method is not None else None


def call_connect_targets(*, record: CallRecord, now: datetime | None = None) -> list[ConnectTarget]:
    """The line's targets in order (whoever holds each position, each named person still in the line's
    team), each with a verified voice number; nobody twice."""
    now = now or timezone.now()
    team = call_team(record)
    line = record.line
    if team is None or line is None:
        return []
    named = {t["user"] for t in line.connect_targets or [] if isinstance(t, dict) and "user" in t}
    members = {u.pk: u for u in User.objects.filter(pk__in=named, memberships__team_id=line.team_id, is_active=True)}

    targets: list[ConnectTarget] = []
    seen: set[int] = set()
    for target in line.connect_targets or []:
        if not isinstance(target, dict):
            continue
        if "position" in target:
            position = str(target["position"])
            people = team_oncall_users(team=team, position=position, at=now)
        else:
            position = ""
            person = members.get(target.get("user"))  # type: ignore[arg-type]
            people = [person] if person is not None else []
        for user in people:
            if user.pk in seen:
                continue
            number = _voice_number(user)
            if number is not None:
                seen.add(user.pk)
                targets.append(ConnectTarget(position=position, user=user, number=number))
    return targets


def call_connect_dialing(*, call_sid: str, attempt: int, user_id: int, now: datetime | None = None) -> None:
    """Note whom the attempt rings, so the call's record can say who was called."""
    now = now or timezone.now()
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is None:
            return
        record_event_add(record, "dialing", now, attempt=attempt, user_id=user_id)
        record.save(update_fields=["events"])


def call_connect_accepted(*, call_sid: str, user_id: int, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is None:
            return False
        if record.connected_to_id is None:
            record.connected_to_id = user_id
        record_event_add(record, "connect_accepted", now, user_id=user_id)
        record.save(update_fields=["connected_to", "events"])
    return True


def _connected_call_record(record: CallRecord, now: datetime, duration: int | None) -> None:
    """Put a connected call on record: open (or join) the caller's incident, acknowledged by the engineer
    who took the call, with a timeline entry of who was rung and how long they talked."""
    team = call_team(record)
    engineer = record.connected_to
    line = record.line
    if team is None or engineer is None or line is None or record.incident_id is not None:
        return
    talked = f" for {duration} s" if duration is not None else ""
    message = (
        f"Call from {caller_label(record)} ({record.from_number}), reference {record.reference}, connected to "
        f"{engineer}{talked}. Rang: {connect_attempts_describe(record)}."
    )
    dedup_key = f"call:{record.from_number}"
    incident = incidents_selectors.incident_open_get(team=team, dedup_key=dedup_key)
    created = False
    if incident is None:
        result = services.incident_trigger(
            team=team,
            title=f"Call from {caller_label(record)} on {line.name}, taken by {engineer}",
            details=message,
            severity=Incident.Severity.CRITICAL,
            urgency=Incident.Urgency.HIGH,
            source=Incident.Source.PHONE,
            dedup_key=dedup_key,
            payload={**record_incident_payload(record), "connected_to": engineer.pk, "talk_seconds": duration},
            policy=record_policy(record),
            via=TimelineEvent.Via.SYSTEM,
            now=now,
        )
        incident, created = result.incident, result.created
        # The engineer is already talking to the customer: nobody else needs paging for this call.
        services.incident_acknowledge(incident=incident, by=engineer, via=TimelineEvent.Via.VOICE, now=now)
    record.incident = incident
    record.incident_created = created
    timeline.timeline_record(
        incident=incident,
        kind=TimelineEvent.Kind.CALL,
        at=now,
        actor=engineer,
        via=TimelineEvent.Via.VOICE,
        message=message,
        data={
            "call_id": record.pk,
            "call_sid": record.call_sid,
            "reference": record.reference,
            "connected_to": engineer.pk,
            "talk_seconds": duration,
        },
    )


def call_dial_finished(
    *,
    call_sid: str,
    attempt: int,
    dial_status: str,
    now: datetime | None = None,
    duration: int | str | None = None,
) -> bool:
    """True when an engineer took the call (the caller has finished talking to them); such a call opens or
    joins the caller's incident, so every call that reached someone is on record."""
    now = now or timezone.now()
    seconds = duration_parse(duration)
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is None:
            return False
        record_event_add(record, "dial_finished", now, attempt=attempt, dial_status=dial_status, duration=seconds)
        connected = record.connected_to_id is not None and dial_status == "completed"
        if connected:
            record.outcome = Outcome.CONNECTED
            metrics.phone_call(outcome=Outcome.CONNECTED)
            record.ended_at = record.ended_at or now
            _connected_call_record(record, now, seconds)
        record.save(update_fields=["events", "outcome", "ended_at", "incident", "incident_created"])
    return connected
