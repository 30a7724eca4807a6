"""Small helpers shared by the shift-notice jobs (handovers, reminders, roster changes, gaps)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, models

from rotations.schedule import Shift


@dataclass(frozen=True, slots=True)
class Hold:
    """A person's continuous hold of one position of one rotation (contiguous segments merged)."""

    rotation_id: int
    position: str
    position_index: int
    user_id: int | None
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def holds_of(shifts: Iterable[Shift]) -> list[Hold]:
    """Merge back-to-back segments of the same holder (cover, override, next shift of the same person)."""
    by_slot: dict[tuple[int, int], list[Shift]] = {}
    for sh in shifts:
        by_slot.setdefault((sh.rotation_id, sh.position_index), []).append(sh)
    out: list[Hold] = []
    for lst in by_slot.values():
        lst.sort(key=lambda s: s.start)
        cur: Hold | None = None
        for sh in lst:
            if cur is not None and cur.user_id == sh.user_id and cur.end == sh.start:
                cur = Hold(cur.rotation_id, cur.position, cur.position_index, cur.user_id, cur.start, sh.end)
                continue
            if cur is not None:
                out.append(cur)
            cur = Hold(sh.rotation_id, sh.position, sh.position_index, sh.user_id, sh.start, sh.end)
        if cur is not None:
            out.append(cur)
    out.sort(key=lambda h: (h.start, h.position_index, h.rotation_id))
    return out


def insert_ignore(obj: models.Model) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new pk, or None when a unique row exists.

    The database decides who wins, so concurrent runs (two beats, retries) never both "own" a row.
    """
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    cols = ", ".join(qn(f.column) for f in fields)
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({cols}) VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT DO NOTHING RETURNING {qn(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    obj.pk = row[0]
    obj._state.adding = False
    return obj.pk


def local(dt: datetime, tz_name: str) -> str:
    """A time as the reader sees it, e.g. "Sun 25 Oct 09:00 CET"."""
    return dt.astimezone(ZoneInfo(tz_name or "UTC")).strftime("%a %d %b %H:%M %Z")


def span(delta: timedelta) -> str:
    """Compact age/duration: "3d 4h", "2h 5m", "7m"."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rem = divmod(minutes, 1440)
    hours, mins = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"
