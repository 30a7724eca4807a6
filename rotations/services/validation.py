"""Validation shared by the roster services."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from rotations.models import (
    Membership,
    RotationEra,
    Team,
)

# A definition change "from now" submitted a little late must not be refused.
PAST_TOLERANCE = timedelta(minutes=5)


MAX_POSITIONS = 5


# --------------------------------------------------------------------------- validation

# Slack's ids: public channels C…, private channels G… (older) or C…; user groups S…
_SLACK_IDS = {
    "slack_channel_id": (re.compile(r"^[CG][A-Z0-9]{6,19}$"), "a Slack channel id such as C0123456789"),
    "slack_usergroup_id": (re.compile(r"^S[A-Z0-9]{6,19}$"), "a Slack user group id such as S0123456789"),
}


def validate_slack_id(value: str, field: str) -> str:
    """Empty (not used), or the shape of a Slack id: a channel name or a user-group handle would make
    every post fail later, so it is refused here with the field named."""
    value = (value or "").strip()
    pattern, what = _SLACK_IDS[field]
    if value and not pattern.match(value):
        raise ValidationError({field: [f"Enter {what} (in Slack: the channel's or group's details, at the bottom)."]})
    return value


def validate_team_name(name: str) -> str:
    """A team name goes into e-mail subjects, SMS and spoken pages: one line of printable text."""
    if any(not ch.isprintable() for ch in name or ""):
        raise ValidationError(
            {"name": ["A team name is one line of text: no line breaks, tabs or control characters."]}
        )
    return name


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


# References across teams: every person or policy named in a write must belong to the team it is used in,
# or a manager of one team could page, or hand the pager to, people of another (or of none). Checked in
# the services, so the API, the portal and the admin refuse alike (a field error: a 400 in the API).

PAGING_ROLES = (Membership.Role.MANAGER, Membership.Role.ENGINEER)


def team_paging_members_check(*, team: Team, users: list, field: str) -> None:
    """Every one of `users` is an active manager or engineer of `team` (viewers are never paged)."""
    ids = {u.pk for u in users}
    ok = set(
        Membership.objects.filter(team=team, user_id__in=ids, role__in=PAGING_ROLES, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )
    bad = [u for u in users if u.pk not in ok]
    if bad:
        names = ", ".join(getattr(u, "display_name", str(u)) for u in bad)
        raise ValidationError({field: [f"{names}: not an engineer or manager of {team}."]})


def _team_policy_check(*, team: Team | None, policy: Any) -> None:
    if policy is not None and (team is None or policy.team_id != team.pk):
        raise ValidationError({"escalation_policy": ["The policy belongs to another team."]})
