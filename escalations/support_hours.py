"""Support hours: a weekly window in a time zone during which low-urgency incidents page. Pure.

A window is the same wall-clock span (`start` to `end`, end exclusive, `end` may be 24:00) on each
of the chosen weekdays, in the policy's time zone. Each day's window is fixed as two instants: the
wall times resolved the way zoneinfo does (PEP 495, `fold=0`), so on a DST day the window is an hour
shorter or longer, a start inside a spring-forward gap falls after the jump, and a start inside the
repeated autumn hour is its first occurrence. `support_hours_contains` and `support_hours_next_start`
both use exactly these instants, so the second is always a moment the first accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class SupportHours:
    time_zone: str
    days: frozenset[int]  # 0 = Monday … 6 = Sunday
    start_minute: int  # minutes after local midnight
    end_minute: int  # exclusive; up to DAY_MINUTES (24:00)

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.time_zone!r}") from exc
        if not self.days or not all(isinstance(d, int) and 0 <= d <= 6 for d in self.days):
            raise ValueError("choose at least one weekday (0 = Monday … 6 = Sunday)")
        if not 0 <= self.start_minute < self.end_minute <= DAY_MINUTES:
            raise ValueError("support hours must end after they start, on the same day")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def to_json(self) -> dict[str, Any]:
        return {
            "time_zone": self.time_zone,
            "days": sorted(self.days),
            "start": _hhmm(self.start_minute),
            "end": _hhmm(self.end_minute),
        }

    @classmethod
    def from_json(cls, data: Any) -> SupportHours | None:
        """None for an empty value (always in support). Raises ValueError saying what is wrong."""
        if not data:
            return None
        if not isinstance(data, dict):
            raise ValueError("support hours must be an object with time_zone, days, start and end")
        unknown = set(data) - {"time_zone", "days", "start", "end"}
        if unknown:
            raise ValueError(f"unknown support hours field(s): {', '.join(sorted(unknown))}")
        zone = data.get("time_zone")
        days = data.get("days")
        if not isinstance(zone, str) or not zone:
            raise ValueError("support hours need a time_zone such as 'Europe/Berlin'")
        if not isinstance(days, list) or any(isinstance(d, bool) or not isinstance(d, int) for d in days):
            raise ValueError("support hours days must be a list of weekday numbers (0 = Monday … 6 = Sunday)")
        return cls(zone, frozenset(days), _minutes(data.get("start"), "start"), _minutes(data.get("end"), "end"))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(value: Any, name: str) -> int:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise ValueError(f"support hours {name} must be a time as HH:MM")
    hours, minutes = value[:2], value[3:]
    if not (hours.isdigit() and minutes.isdigit()) or int(minutes) > 59 or int(hours) > 24:
        raise ValueError(f"support hours {name} must be a time as HH:MM")
    total = int(hours) * 60 + int(minutes)
    if total > DAY_MINUTES:
        raise ValueError(f"support hours {name} must be a time as HH:MM")
    return total


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The instant of a wall-clock minute of `day` (24:00 = next midnight), in UTC."""
    if minute == DAY_MINUTES:
        day, minute = day + timedelta(days=1), 0
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _window(hours: SupportHours, day: date, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    if day.weekday() not in hours.days:
        return None
    start, end = _instant(day, hours.start_minute, zone), _instant(day, hours.end_minute, zone)
    # A short window lying wholly inside a spring-forward gap does not happen that day.
    return (start, end) if start < end else None


def support_hours_contains(hours: SupportHours, at: datetime) -> bool:
    """Is `at` (aware) inside one of the windows?"""
    zone = hours.zone
    local_day = at.astimezone(zone).date()
    for offset in (-1, 0, 1):
        window = _window(hours, local_day + timedelta(days=offset), zone)
        if window is not None and window[0] <= at < window[1]:
            return True
    return False


def support_hours_next_start(hours: SupportHours, at: datetime) -> datetime:
    """`at` when it is inside support hours, else the instant (UTC) the next window begins."""
    if support_hours_contains(hours, at):
        return at
    zone = hours.zone
    local_day = at.astimezone(zone).date()
    # A week and a day ahead covers every weekday even when `at` is late on a window's day.
    for offset in range(0, 9):
        window = _window(hours, local_day + timedelta(days=offset), zone)
        if window is not None and window[0] > at:
            return window[0]
    raise AssertionError("a non-empty weekly window always starts within eight days")
