"""One CallRecord: lock it, add to its event log, and read what its incident is built from.

Shared by the call lifecycle (services) and connect-me-now (connect); callers hold the row lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from escalations.models import (
    CallRecord,
    EscalationPolicy,
    PhoneMenuOption,
)
from portal.models import User


def record_event_add(record: CallRecord, kind: str, now: datetime, **data: Any) -> None:
    record.events = [*(record.events or []), {"at": now.isoformat(), "kind": kind, **data}]


def record_lock(call_sid: str) -> CallRecord | None:
    return (
        CallRecord.objects.select_for_update(of=("self",))
        .select_related("line__team", "line__policy", "customer_contact", "menu_team", "incident")
        .filter(call_sid=call_sid)
        .first()
    )


def record_menu_option(record: CallRecord) -> PhoneMenuOption | None:
    line = record.line
    if line is None or record.menu_digit is None:
        return None
    return line.menu_options.select_related("team", "policy").filter(digit=record.menu_digit).first()


def record_policy(record: CallRecord) -> EscalationPolicy | None:
    option = record_menu_option(record)
    if option is not None:
        return option.policy
    return record.line.policy if record.line is not None else None


def record_incident_payload(record: CallRecord) -> dict[str, Any]:
    option = record_menu_option(record)
    contact = record.customer_contact
    line = record.line
    return {
        "call_sid": record.call_sid,
        "reference": record.reference,
        "caller": record.from_number,
        "caller_verified": record.caller_verified,
        "verification": "verified" if record.caller_verified else "unverified",
        "customer": (
            {"id": contact.pk, "name": contact.name, "organisation": contact.organisation} if contact else None
        ),
        "line": {"id": record.line_id, "name": line.name, "number": line.number} if line is not None else None,
        "menu": (
            {"digit": record.menu_digit, "label": option.label if option else "", "team": record.menu_team_id}
            if record.menu_digit is not None
            else None
        ),
        "recording": {"sid": record.recording_sid, "duration": record.recording_duration},
        "transcript_status": record.transcript_status,
        "call_time": record.started_at.isoformat(),
    }


def duration_parse(value: Any) -> int | None:
    try:
        duration = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return duration if duration >= 0 else None


def connect_attempts_describe(record: CallRecord) -> str:
    """'Ana (no-answer), Ben (completed, 95 s)': who was rung, and how each attempt ended."""
    dialed: dict[int, int] = {}
    finished: dict[int, tuple[str, int | None]] = {}
    for event in record.events or []:
        if event.get("kind") == "dialing":
            dialed[event["attempt"]] = event["user_id"]
        elif event.get("kind") == "dial_finished":
            finished[event["attempt"]] = (event.get("dial_status", ""), event.get("duration"))
    users = User.objects.in_bulk(set(dialed.values()))
    parts = []
    for attempt in sorted(dialed):
        user = users.get(dialed[attempt])
        status, duration = finished.get(attempt, ("no result", None))
        detail = f"{status or 'no result'}, {duration} s" if duration is not None else (status or "no result")
        parts.append(f"{user or 'a removed user'} ({detail})")
    return ", ".join(parts)
