"""Schedule resolver: who holds which rotation position when.

Pure Python over plain data (no Django).  Everything public takes and returns
aware datetimes; results are always in UTC.

Hot-path notes: a ``RotationSpec`` is compiled once (per object identity) into
``_CSpec``/``_CEra`` holding the resolved ``ZoneInfo``, the anchor in local
wall-clock time and the era bounds, so ``oncall_at`` is a handful of datetime
operations plus the construction of the returned ``Shift`` objects.
"""

from __future__ import annotations

import calendar
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "Era",
    "Exclusion",
    "Handoff",
    "Override",
    "Reason",
    "RotationSpec",
    "Shift",
    "Window",
    "coverage_gaps",
    "handoffs",
    "oncall_at",
    "rotation_shifts",
    "team_oncall_at",
    "team_shifts",
]

UNITS = ("hours", "days", "weeks", "months")


@dataclass(frozen=True, slots=True)
class Window:
    start: time
    end: time
    weekday: int | None = None


@dataclass(frozen=True, slots=True)
class Era:
    effective_from: datetime
    anchor: datetime
    unit: str
    length: int
    participants: tuple[int, ...]
    restrictions: tuple[Window, ...] = ()


@dataclass(frozen=True, slots=True)
class RotationSpec:
    id: int
    team_id: int
    time_zone: str
    positions: tuple[str, ...]
    eras: tuple[Era, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    user_id: int
    start: datetime
    end: datetime
    id: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Override:
    rotation_id: int
    user_id: int
    start: datetime
    end: datetime
    position: str | None = None
    replaces_user_id: int | None = None
    id: int | None = None


class Reason(StrEnum):
    ROTATION = "rotation"
    COVER = "cover"
    OVERRIDE = "override"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class Shift:
    rotation_id: int
    position: str
    position_index: int
    user_id: int | None
    start: datetime
    end: datetime
    reason: Reason
    scheduled_user_id: int | None
    shift_index: int
    era_index: int
    override_id: int | None = None
    exclusion_id: int | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    rotation_id: int
    position: str
    at: datetime
    outgoing_user_id: int | None
    incoming_user_id: int | None
    shift: Shift


_ROTATION = Reason.ROTATION
_COVER = Reason.COVER
_OVERRIDE = Reason.OVERRIDE
_GAP = Reason.GAP
# Sentinel for "no next era"; far enough that arithmetic never reaches it.
_FOREVER = datetime(9000, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)

_zones: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    # ZoneInfo() has its own cache but the constructor call is still costly
    # compared to a dict lookup on the hot path.
    tz = _zones.get(name)
    if tz is None:
        tz = _zones[name] = ZoneInfo(name)
    return tz


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is UTC:
        return dt
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime not allowed: {dt!r}")
    return dt.astimezone(UTC)


# --------------------------------------------------------------------------
# Compiled representation
# --------------------------------------------------------------------------


class _CEra:
    """One era with everything precomputed that does not depend on the query."""

    __slots__ = (
        "_groups",
        "anchor_local",
        "anchor_ord",
        "anchor_utc",
        "days",
        "end",
        "index",
        "length",
        "n",
        "participants",
        "pset",
        "start",
        "step",
        "tz",
        "unit",
        "windows",
    )

    def __init__(self, index: int, era: Era, tz: ZoneInfo, k: int, end: datetime) -> None:
        if era.unit not in UNITS:
            raise ValueError(f"unknown unit {era.unit!r}")
        if era.length < 1:
            raise ValueError("length must be >= 1")
        self.index = index
        self.unit = era.unit
        self.length = era.length
        self.tz = tz
        # fold=0 on the anchor as well, so boundary 0 follows the same rule as
        # every other local boundary.
        self.anchor_local = era.anchor.astimezone(tz).replace(tzinfo=None, fold=0)
        self.anchor_ord = self.anchor_local.toordinal()
        if era.unit == "hours":
            self.step = timedelta(hours=era.length)
            self.days = 0
            self.anchor_utc = _utc(era.anchor)
        else:
            self.days = era.length * (7 if era.unit == "weeks" else 1)
            self.step = timedelta(days=self.days)
            self.anchor_utc = self.anchor_local.replace(tzinfo=tz).astimezone(UTC)
        self.participants = tuple(era.participants)
        self.n = len(self.participants)
        self.pset = frozenset(self.participants)
        self.windows = tuple(era.restrictions)
        self.start = max(_utc(era.effective_from), self.anchor_utc)
        self.end = end
        n = self.n
        p = self.participants
        # The position group only depends on i % n, so precompute all of them.
        self._groups = tuple(
            tuple(p[(r + j) % n] if j < n else None for j in range(k)) for r in range(max(n, 1))
        )

    def group(self, i: int) -> tuple[int | None, ...]:
        return self._groups[i % self.n] if self.n else self._groups[0]

    def bound(self, i: int) -> datetime:
        """UTC start of shift i (i may be one past the last interesting shift)."""
        if self.unit == "hours":
            return self.anchor_utc + self.step * i
        if self.unit == "months":
            a = self.anchor_local
            total = a.month - 1 + i * self.length
            y = a.year + total // 12
            m = total % 12 + 1
            d = min(a.day, calendar.monthrange(y, m)[1])
            naive = a.replace(year=y, month=m, day=d)
        else:
            naive = self.anchor_local + self.step * i
        # Wall-clock boundary resolved with fold=0: first occurrence for
        # ambiguous times, forward of the gap for non-existent ones.
        return naive.replace(tzinfo=self.tz).astimezone(UTC)

    def locate(self, t: datetime) -> tuple[int, datetime, datetime]:
        """(index, start, end) of the shift containing t; requires t >= anchor.

        Arithmetic guess from elapsed time / local calendar distance, then a
        bounded correction -- never a walk from the anchor.
        """
        if self.unit == "hours":
            i = (t - self.anchor_utc) // self.step
            s = self.anchor_utc + self.step * i
            return i, s, s + self.step
        local = t.astimezone(self.tz)
        if self.unit == "months":
            a = self.anchor_local
            i = ((local.year - a.year) * 12 + local.month - a.month) // self.length
        else:
            i = (local.toordinal() - self.anchor_ord) // self.days
        i = max(i, 0)
        s = self.bound(i)
        while i > 0 and s > t:
            i -= 1
            s = self.bound(i)
        e = self.bound(i + 1)
        while e <= t:
            i += 1
            s = e
            e = self.bound(i + 1)
        return i, s, e

    def window_intervals(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        """Restriction windows as merged UTC intervals clipped to [lo, hi)."""
        tz = self.tz
        first = lo.astimezone(tz).toordinal() - 1
        last = hi.astimezone(tz).toordinal() + 1
        raw: list[tuple[datetime, datetime]] = []
        for o in range(first, last + 1):
            day = datetime.fromordinal(o)
            wd = day.weekday()
            for w in self.windows:
                if w.weekday is not None and w.weekday != wd:
                    continue
                s = datetime.combine(day, w.start).replace(tzinfo=tz).astimezone(UTC)
                eday = day if w.end > w.start else day + _ONE_DAY
                e = datetime.combine(eday, w.end).replace(tzinfo=tz).astimezone(UTC)
                # A window entirely inside a spring-forward gap maps to nothing.
                if e > s and e > lo and s < hi:
                    raw.append((max(s, lo), min(e, hi)))
        raw.sort()
        merged: list[tuple[datetime, datetime]] = []
        for s, e in raw:
            if merged and s <= merged[-1][1]:
                if e > merged[-1][1]:
                    merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        return merged


class _CSpec:
    __slots__ = ("eras", "id", "k", "pos_index", "positions", "starts")

    def __init__(self, spec: RotationSpec) -> None:
        tz = _zone(spec.time_zone)
        self.id = spec.id
        self.positions = tuple(spec.positions)
        self.k = len(self.positions)
        self.pos_index = {p: j for j, p in enumerate(self.positions)}
        eras: list[_CEra] = []
        src = spec.eras
        for idx, era in enumerate(src):
            end = _utc(src[idx + 1].effective_from) if idx + 1 < len(src) else _FOREVER
            ce = _CEra(idx, era, tz, self.k, end)
            if ce.start < ce.end:  # an era superseded before its anchor never runs
                eras.append(ce)
        self.eras = tuple(eras)
        self.starts = [ce.start for ce in eras]

    def era_at(self, t: datetime) -> _CEra | None:
        idx = bisect_right(self.starts, t) - 1
        if idx < 0:
            return None
        ce = self.eras[idx]
        return ce if t < ce.end else None


_compiled: dict[int, tuple[RotationSpec, _CSpec]] = {}


def _compile(spec: RotationSpec) -> _CSpec:
    # Keyed by identity (hashing a whole spec costs more than resolving it);
    # the stored strong reference makes a stale id() hit impossible.
    hit = _compiled.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    cs = _CSpec(spec)
    if len(_compiled) >= 20_000:
        _compiled.clear()
    _compiled[id(spec)] = (spec, cs)
    return cs


# Internal normalised records: plain tuples are much cheaper than dataclasses.
# exclusion: (start, end, user_id, id)
# override:  (start, end, user_id, position_index | None, replaces_user_id | None, id)


def _norm_exclusions(
    exclusions: Iterable[Exclusion], lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime, int, int | None]]:
    out = []
    for x in exclusions:
        s = _utc(x.start)
        e = _utc(x.end)
        if s < hi and e > lo and s < e:
            out.append((s, e, x.user_id, x.id))
    # Deterministic choice of exclusion_id when several cover the same instant.
    out.sort(key=lambda r: (r[0], -1 if r[3] is None else r[3]))
    return out


def _norm_overrides(
    cs: _CSpec, overrides: Iterable[Override], lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime, int, int | None, int | None, int | None]]:
    out = []
    rid = cs.id
    for o in overrides:
        if o.rotation_id != rid:
            continue
        s = _utc(o.start)
        e = _utc(o.end)
        if not (s < hi and e > lo and s < e):
            continue
        if o.position is not None:
            j = cs.pos_index.get(o.position)
            if j is None:
                continue
            out.append((s, e, o.user_id, j, None, o.id))
        elif o.replaces_user_id is not None:
            out.append((s, e, o.user_id, None, o.replaces_user_id, o.id))
    # Applied in this order, so the later start (then higher id) wins.
    out.sort(key=lambda r: (r[0], -1 if r[5] is None else r[5]))
    return out


# --------------------------------------------------------------------------
# Segment construction
# --------------------------------------------------------------------------


def _emit_piece(
    cs: _CSpec,
    ce: _CEra,
    i: int,
    a: datetime,
    b: datetime,
    exs: list,
    ovs: list,
    out: list[Shift],
) -> None:
    """Append the segments of shift i restricted to [a, b)."""
    positions = cs.positions
    k = cs.k
    rid = cs.id
    era_index = ce.index
    base = ce.group(i)
    if exs:
        exs = [x for x in exs if x[0] < b and x[1] > a]
    if ovs:
        ovs = [o for o in ovs if o[0] < b and o[1] > a]
    if not exs and not ovs:
        for j in range(k):
            u = base[j]
            out.append(
                Shift(rid, positions[j], j, u, a, b, _ROTATION if u is not None else _GAP, u, i, era_index)
            )
        return

    pts = {a, b}
    for x in exs:
        pts.add(x[0])
        pts.add(x[1])
    for o in ovs:
        pts.add(o[0])
        pts.add(o[1])
    cuts = sorted(p for p in pts if a <= p <= b)

    participants = ce.participants
    n = ce.n
    open_: list = [None] * k  # per position: (key, start)
    for idx in range(len(cuts) - 1):
        p = cuts[idx]
        # --- exclusion routing -------------------------------------------
        excluded: dict[int, int | None] = {}
        for x in exs:
            if x[0] <= p < x[1] and x[2] not in excluded:
                excluded[x[2]] = x[3]
        keys: list[tuple] = []
        if excluded:
            held = {u for u in base if u is not None and u not in excluded}
            routed: list[int | None] = []
            for j in range(k):
                u = base[j]
                if u is None:
                    keys.append((None, _GAP, None, None))
                    routed.append(None)
                elif u not in excluded:
                    keys.append((u, _ROTATION, None, None))
                    routed.append(u)
                else:
                    cover = None
                    for m in range(n):
                        c = participants[(i + k + m) % n]
                        if c not in excluded and c not in held:
                            cover = c
                            break
                    if cover is None:
                        keys.append((None, _GAP, None, excluded[u]))
                    else:
                        held.add(cover)
                        keys.append((cover, _COVER, None, excluded[u]))
                    routed.append(cover)
        else:
            routed = list(base)
            for u in base:
                keys.append((u, _ROTATION if u is not None else _GAP, None, None))
        # --- overrides ----------------------------------------------------
        for o in ovs:
            if o[0] <= p < o[1]:
                if o[3] is not None:
                    keys[o[3]] = (o[2], _OVERRIDE, o[5], None)
                else:
                    rep = o[4]
                    for j in range(k):
                        if routed[j] == rep:
                            keys[j] = (o[2], _OVERRIDE, o[5], None)
        # --- merge with the open segment of each position ------------------
        for j in range(k):
            key = keys[j]
            cur = open_[j]
            if cur is not None:
                if cur[0] == key:
                    continue
                _close(out, rid, positions, j, base[j], i, era_index, cur, p)
            open_[j] = (key, p)
    for j in range(k):
        _close(out, rid, positions, j, base[j], i, era_index, open_[j], b)


def _close(out, rid, positions, j, sched, i, era_index, cur, end) -> None:
    (user, reason, oid, xid), start = cur
    out.append(Shift(rid, positions[j], j, user, start, end, reason, sched, i, era_index, oid, xid))


def _sort_key(sh: Shift) -> tuple[datetime, int]:
    return sh.start, sh.position_index


def _rotation_shifts(
    cs: _CSpec, exs_all: list, ovs_all: list, since: datetime, until: datetime
) -> list[Shift]:
    out: list[Shift] = []
    for ce in cs.eras:
        lo = max(ce.start, since)
        hi = min(ce.end, until)
        if lo >= hi:
            continue
        pset = ce.pset
        exs = [x for x in exs_all if x[2] in pset and x[0] < hi and x[1] > lo]
        ovs = [o for o in ovs_all if o[0] < hi and o[1] > lo]
        wins = ce.window_intervals(lo, hi) if ce.windows else None
        w = 0
        i, s, e = ce.locate(lo)
        while s < hi:
            a = max(lo, s)
            b = min(hi, e)
            if wins is None:
                _emit_piece(cs, ce, i, a, b, exs, ovs, out)
            else:
                # Windows are sorted and shifts advance monotonically.
                while w < len(wins) and wins[w][1] <= a:
                    w += 1
                ww = w
                while ww < len(wins) and wins[ww][0] < b:
                    ws, we = wins[ww]
                    pa = max(a, ws)
                    pb = min(b, we)
                    if pa < pb:
                        _emit_piece(cs, ce, i, pa, pb, exs, ovs, out)
                    ww += 1
            i += 1
            s = e
            e = ce.bound(i + 1)
    out.sort(key=_sort_key)
    return out


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def rotation_shifts(
    spec: RotationSpec,
    exclusions: Iterable[Exclusion],
    overrides: Iterable[Override],
    since: datetime,
    until: datetime,
) -> list[Shift]:
    """Every segment intersecting [since, until), clipped to it.

    Sorted by (start, position_index).  Segments are merged within one
    rotation shift whenever holder, reason, override and exclusion agree, so
    the answer never depends on the window asked.
    """
    since = _utc(since)
    until = _utc(until)
    if since >= until:
        return []
    cs = _compile(spec)
    exs = _norm_exclusions(exclusions, since, until)
    ovs = _norm_overrides(cs, overrides, since, until)
    return _rotation_shifts(cs, exs, ovs, since, until)


def oncall_at(
    spec: RotationSpec,
    exclusions: Iterable[Exclusion],
    overrides: Iterable[Override],
    at: datetime,
) -> list[Shift]:
    """The (unclipped) segments covering `at`, one per position, gaps included."""
    at = _utc(at)
    cs = _compile(spec)
    ce = cs.era_at(at)
    if ce is None:
        return []
    i, s, e = ce.locate(at)
    s = max(s, ce.start)
    e = min(e, ce.end)
    if ce.windows:
        for ws, we in ce.window_intervals(s, e):
            if ws <= at < we:
                s, e = ws, we
                break
        else:
            return []
    pset = ce.pset
    exs = None
    for x in exclusions:
        if x.user_id in pset and x.start < e and x.end > s and x.start < x.end:
            exs = _norm_exclusions(exclusions, s, e)
            exs = [x for x in exs if x[2] in pset]
            break
    rid = cs.id
    ovs = None
    for o in overrides:
        if o.rotation_id == rid and o.start < e and o.end > s:
            ovs = _norm_overrides(cs, overrides, s, e)
            break
    if not exs and not ovs:
        # Fast path: the plain rotation.
        base = ce.group(i)
        positions = cs.positions
        era_index = ce.index
        return [
            Shift(rid, positions[j], j, u, s, e, _ROTATION if u is not None else _GAP, u, i, era_index)
            for j, u in enumerate(base)
        ]
    segs: list[Shift] = []
    _emit_piece(cs, ce, i, s, e, exs or [], ovs or [], segs)
    return sorted((sh for sh in segs if sh.start <= at < sh.end), key=_sort_key)


def team_oncall_at(
    specs: Sequence[RotationSpec],
    exclusions: Iterable[Exclusion],
    overrides: Iterable[Override],
    at: datetime,
) -> dict[str, list[Shift]]:
    """Position name -> segments covering `at` across the team's rotations.

    Gap segments are included (a consumer wanting people filters on
    ``user_id is not None``); rotations appear in the order given.
    """
    exclusions = exclusions if isinstance(exclusions, (list, tuple)) else list(exclusions)
    overrides = overrides if isinstance(overrides, (list, tuple)) else list(overrides)
    result: dict[str, list[Shift]] = {}
    for spec in specs:
        for sh in oncall_at(spec, exclusions, overrides, at):
            lst = result.get(sh.position)
            if lst is None:
                result[sh.position] = [sh]
            else:
                lst.append(sh)
    return result


def team_shifts(
    specs: Sequence[RotationSpec],
    exclusions: Iterable[Exclusion],
    overrides: Iterable[Override],
    since: datetime,
    until: datetime,
) -> list[Shift]:
    """All rotations' segments in [since, until), sorted by (start, position_index, rotation_id)."""
    since = _utc(since)
    until = _utc(until)
    if since >= until:
        return []
    exs = _norm_exclusions(exclusions, since, until)
    overrides = list(overrides)
    out: list[Shift] = []
    for spec in specs:
        cs = _compile(spec)
        out.extend(_rotation_shifts(cs, exs, _norm_overrides(cs, overrides, since, until), since, until))
    out.sort(key=lambda sh: (sh.start, sh.position_index, sh.rotation_id))
    return out


def coverage_gaps(
    specs: Sequence[RotationSpec],
    exclusions: Iterable[Exclusion],
    overrides: Iterable[Override],
    since: datetime,
    until: datetime,
    positions: Sequence[str] | None = None,
) -> list[tuple[str, datetime, datetime]]:
    """(position, start, end) windows in [since, until) where nobody is on call.

    `positions` defaults to every position name used by the team's rotations,
    in first-seen order.  Output is grouped by position, then by start.
    """
    since = _utc(since)
    until = _utc(until)
    if positions is None:
        seen: dict[str, None] = {}
        for spec in specs:
            for p in spec.positions:
                seen.setdefault(p, None)
        positions = list(seen)
    if since >= until:
        return []
    covered: dict[str, list[tuple[datetime, datetime]]] = {p: [] for p in positions}
    for sh in team_shifts(specs, exclusions, overrides, since, until):
        if sh.user_id is not None and sh.position in covered:
            covered[sh.position].append((sh.start, sh.end))
    gaps: list[tuple[str, datetime, datetime]] = []
    for p in positions:
        cursor = since
        for s, e in sorted(covered[p]):
            if s > cursor:
                gaps.append((p, cursor, s))
            cursor = max(cursor, e)
        if cursor < until:
            gaps.append((p, cursor, until))
    return gaps


def handoffs(
    spec: RotationSpec,
    exclusions: Iterable[Exclusion],
    overrides: Iterable[Override],
    since: datetime,
    until: datetime,
) -> list[Handoff]:
    """Every change of holder of a position at an instant in (since, until].

    ``shift`` is the incoming segment, or the outgoing one when the position
    becomes empty (end of a restriction window, era with no anchor yet...).
    Changes to or from a GAP segment count (the holder becomes None).
    """
    since = _utc(since)
    until = _utc(until)
    if since >= until:
        return []
    # One microsecond past `until` so a change exactly at `until` is seen.
    segs = rotation_shifts(spec, exclusions, overrides, since, until + _ONE_US)
    by_pos: dict[int, list[Shift]] = {}
    for sh in segs:
        by_pos.setdefault(sh.position_index, []).append(sh)
    out: list[Handoff] = []
    rid = spec.id
    for lst in by_pos.values():
        prev: Shift | None = None
        for sh in lst:
            if prev is not None and prev.end < sh.start:
                # Position went empty between prev and sh.
                if prev.user_id is not None and prev.end <= until:
                    out.append(Handoff(rid, prev.position, prev.end, prev.user_id, None, prev))
                prev = None
            if sh.start > since and sh.start <= until:
                outgoing = prev.user_id if prev is not None else None
                if outgoing != sh.user_id:
                    out.append(Handoff(rid, sh.position, sh.start, outgoing, sh.user_id, sh))
            prev = sh
        if prev is not None and prev.user_id is not None and prev.end <= until:
            out.append(Handoff(rid, prev.position, prev.end, prev.user_id, None, prev))
    out.sort(key=lambda h: (h.at, h.shift.position_index))
    return out
