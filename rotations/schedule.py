"""Schedule resolver: who holds which rotation position when.

Pure Python over plain data (no Django).  Everything public takes aware
datetimes and returns UTC ones.

Semantics settled here (beyond the shared design notes):

* Local boundaries (days/weeks/months handoffs, restriction windows) resolve
  with fold=0, including the anchor itself: an anchor given as the second
  occurrence of an ambiguous local time is treated as the first.
* Hours-unit rotations step in absolute time from the anchor, so they are
  "on the hour" exactly when the anchor is.
* Overrides only apply while the rotation is active (after the era's anchor,
  inside restriction windows); they never create a shift on their own.  An
  override naming an unknown position, or naming neither a position nor a
  replaced user, is ignored; with both set, the position wins.
* Segments merge only within one rotation shift and only when era, holder,
  reason, override and exclusion all match, which is what makes the answer
  independent of the window asked for.
* Participants are used as given: a user listed twice can be scheduled twice.
* Shift i of an era (counted from its anchor) is led by participant
  ``(i + offset) % n``; the following positions take the next participants in
  order.  ``offset`` (default 0) is how a definition change continues the
  cycle instead of restarting it: ``cycle_offset`` computes it from the eras
  before, and it is stored with the era, so the resolver stays a function of
  the era rows.  Within an era, any n consecutive shifts give every
  participant each position exactly once (n >= positions).

Hot path: a ``RotationSpec`` is compiled once (by identity, then by value)
into ``_CSpec``/``_CEra`` holding the ``ZoneInfo``, the anchor in local
wall-clock time, the era bounds and the position groups, plus a memo of the
last located shift so repeated "who is on call now" queries skip the
boundary arithmetic.
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
    "cycle_offset",
    "exclusion_make",
    "handoffs",
    "oncall_at",
    "override_make",
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
    offset: int = 0


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

_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)  # noqa: DTZ001 (naive on purpose: local wall-clock arithmetic)

_zones: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    # ZoneInfo() has its own cache but the constructor call is still costly
    # compared to a dict lookup on the hot path.
    tz = _zones.get(name)
    if tz is None:
        tz = _zones[name] = ZoneInfo(name)
    return tz


def _to_utc(naive: datetime, tz: ZoneInfo) -> datetime:
    """Local wall-clock (fold=0) -> aware UTC.

    Same result as ``naive.replace(tzinfo=tz).astimezone(UTC)`` (for a gap,
    fold=0 applies the pre-transition offset, landing forward of the gap) but
    ~10x cheaper: ``replace(tzinfo=...)`` dominates the hot path otherwise.
    """
    return _EPOCH_UTC + ((naive - tz.utcoffset(naive)) - _EPOCH_NAIVE)


class _ShiftBuilder:
    """Builds ``Shift`` instances without the frozen-dataclass __init__.

    A frozen dataclass sets each of its 12 fields through object.__setattr__,
    which made Shift construction the single largest cost of ``oncall_at``.
    This class has the identical slot layout, assigns plainly, then re-labels
    the instance as a ``Shift`` (allowed because the layouts match).  The
    result is indistinguishable from ``Shift(...)``: same type, equality,
    hash, immutability, pickling.
    """

    __slots__ = Shift.__slots__

    def __init__(
        self, rotation_id, position, position_index, user_id, start, end, reason,
        scheduled_user_id, shift_index, era_index, override_id=None, exclusion_id=None,
    ) -> None:  # fmt: skip
        self.rotation_id = rotation_id
        self.position = position
        self.position_index = position_index
        self.user_id = user_id
        self.start = start
        self.end = end
        self.reason = reason
        self.scheduled_user_id = scheduled_user_id
        self.shift_index = shift_index
        self.era_index = era_index
        self.override_id = override_id
        self.exclusion_id = exclusion_id
        self.__class__ = Shift


_mk_shift = _ShiftBuilder


class _ExclusionBuilder:
    """``Exclusion(...)`` without the frozen-dataclass __init__ (see _ShiftBuilder): loaders build
    thousands per request."""

    __slots__ = Exclusion.__slots__

    def __init__(self, user_id, start, end, id=None, reason="") -> None:
        self.user_id = user_id
        self.start = start
        self.end = end
        self.id = id
        self.reason = reason
        self.__class__ = Exclusion


class _OverrideBuilder:
    """``Override(...)`` without the frozen-dataclass __init__ (see _ShiftBuilder)."""

    __slots__ = Override.__slots__

    def __init__(self, rotation_id, user_id, start, end, position=None, replaces_user_id=None, id=None) -> None:
        self.rotation_id = rotation_id
        self.user_id = user_id
        self.start = start
        self.end = end
        self.position = position
        self.replaces_user_id = replaces_user_id
        self.id = id
        self.__class__ = Override


def exclusion_make(user_id: int, start: datetime, end: datetime, id: int | None = None, reason: str = "") -> Exclusion:
    """Same as ``Exclusion(...)``, about 3x cheaper: for loaders that build thousands."""
    return _ExclusionBuilder(user_id, start, end, id, reason)  # type: ignore[return-value]


def override_make(
    rotation_id: int,
    user_id: int,
    start: datetime,
    end: datetime,
    position: str | None = None,
    replaces_user_id: int | None = None,
    id: int | None = None,
) -> Override:
    """Same as ``Override(...)``, about 3x cheaper: for loaders that build thousands."""
    return _OverrideBuilder(rotation_id, user_id, start, end, position, replaces_user_id, id)  # type: ignore[return-value]


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
        "_plain_keys",
        "anchor_local",
        "anchor_ord",
        "anchor_utc",
        "days",
        "end",
        "guess_offset",
        "index",
        "k",
        "length",
        "memo",
        "n",
        "participants",
        "pset",
        "seg_memo",
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
        unit = self.unit = era.unit
        self.length = era.length
        self.tz = tz
        anchor = era.anchor
        # fold=0 on the anchor as well, so boundary 0 follows the same rule as
        # every other local boundary.
        if anchor.tzinfo is not tz:
            anchor = anchor.astimezone(tz)
        # Positional construction: datetime.replace() and keyword arguments cost ~1.5 us each,
        # which dominated compiling a thousand specs.
        anchor_local = datetime(  # noqa: DTZ001 (local wall clock; the zone is applied below)
            anchor.year, anchor.month, anchor.day, anchor.hour, anchor.minute, anchor.second, anchor.microsecond
        )
        self.anchor_local = anchor_local
        self.anchor_ord = anchor_local.toordinal()
        # Index guesses use one fixed offset instead of a real UTC->local
        # conversion; locate() corrects the guess by at most a step or two.
        # The same offset resolves the anchor (fold=0): one utcoffset() call (~0.7 us) instead of two.
        offset = self.guess_offset = tz.utcoffset(anchor_local)
        if unit == "hours":
            self.step = timedelta(0, era.length * 3600)
            self.days = 0
            self.anchor_utc = _utc(era.anchor)
        else:
            days = self.days = era.length * (7 if unit == "weeks" else 1)
            self.step = timedelta(days)
            self.anchor_utc = _EPOCH_UTC + ((anchor_local - offset) - _EPOCH_NAIVE)
        participants = era.participants
        if type(participants) is not tuple:
            participants = tuple(participants)
        n = self.n = len(participants)
        # Stored rotated by the offset, so the hot path keeps indexing by i % n.
        r = era.offset % n if n else 0
        if r:
            participants = participants[r:] + participants[:r]
        self.participants = participants
        # Membership in a handful of ints is as fast in the tuple; only big rotations get a set.
        self.pset = frozenset(participants) if n > 8 else participants
        self.windows = (
            tuple(
                Window(w.start.replace(fold=0, tzinfo=None), w.end.replace(fold=0, tzinfo=None), w.weekday)
                for w in era.restrictions
            )
            if era.restrictions
            else ()
        )
        # Last plain-rotation answer of oncall_at: (start, end, shifts).  Shifts
        # last hours to weeks, so repeated "who is on call now" queries hit it.
        self.memo: tuple[datetime, datetime, int, tuple[Shift, ...] | None] | None = None
        # Last exclusion/override-affected answer, keyed by the relevant
        # records themselves: (exs, ovs, valid_from, valid_until, shifts).
        self.seg_memo: tuple[list, list, datetime, datetime, tuple] | None = None
        effective_from = era.effective_from
        if effective_from.tzinfo is not UTC:
            effective_from = _utc(effective_from)
        self.start = effective_from if effective_from > self.anchor_utc else self.anchor_utc
        self.end = end
        # The position group only depends on i % n: built on first use and kept. Building all n
        # eagerly was a third of compiling a spec, and "who is on call now" needs one or two.
        self.k = k
        self._groups: list[tuple[int | None, ...] | None] = [None] * max(self.n, 1)
        self._plain_keys: list[tuple[tuple, ...] | None] = [None] * max(self.n, 1)

    def plain_keys(self, i: int) -> tuple[tuple, ...]:
        """Per position (user, reason, override_id, exclusion_id) when nothing is excluded or overridden."""
        r = i % self.n if self.n else 0
        pk = self._plain_keys[r]
        if pk is None:
            pk = self._plain_keys[r] = tuple(
                (u, _ROTATION if u is not None else _GAP, None, None) for u in self.group(i)
            )
        return pk

    def group(self, i: int) -> tuple[int | None, ...]:
        n = self.n
        r = i % n if n else 0
        g = self._groups[r]
        if g is None:
            p = self.participants
            k = self.k
            if r + k <= n:
                g = p[r : r + k]
            elif k <= n:
                g = p[r:] + p[: r + k - n]
            else:
                g = p[r:] + p[:r] + (None,) * (k - n)
            self._groups[r] = g
        return g

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
        return _to_utc(naive, self.tz)

    def locate(self, t: datetime) -> tuple[int, datetime, datetime]:
        """(index, start, end) of the shift containing t; requires t >= anchor.

        Arithmetic guess from elapsed time / local calendar distance, then a
        bounded correction -- never a walk from the anchor.
        """
        if self.unit == "hours":
            i = (t - self.anchor_utc) // self.step
            s = self.anchor_utc + self.step * i
            return i, s, s + self.step
        local = t + self.guess_offset
        if self.unit == "months":
            a = self.anchor_local
            i = ((local.year - a.year) * 12 + local.month - a.month) // self.length
        else:
            i = (local.toordinal() - self.anchor_ord) // self.days
            if i < 0:
                i = 0
            # bound() inlined for the common case: the guess is right almost always.
            tz = self.tz
            naive = self.anchor_local + self.step * i
            s = _EPOCH_UTC + ((naive - tz.utcoffset(naive)) - _EPOCH_NAIVE)
            if s <= t:
                naive += self.step
                e = _EPOCH_UTC + ((naive - tz.utcoffset(naive)) - _EPOCH_NAIVE)
                if t < e:
                    return i, s, e
        if i < 0:
            i = 0
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
                s = _to_utc(datetime.combine(day, w.start), tz)
                eday = day if w.end > w.start else day + _ONE_DAY
                e = _to_utc(datetime.combine(eday, w.end), tz)
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
        positions = self.positions = tuple(spec.positions)
        k = self.k = len(positions)
        # Almost every rotation uses the same few position tuples: share their index maps.
        pos_index = _pos_indexes.get(positions)
        if pos_index is None:
            pos_index = _pos_indexes[positions] = {p: j for j, p in enumerate(positions)}
        self.pos_index = pos_index
        src = spec.eras
        if len(src) == 1:
            ce = _CEra(0, src[0], tz, k, _FOREVER)
            self.eras = (ce,) if ce.start < ce.end else ()
        else:
            eras: list[_CEra] = []
            for idx, era in enumerate(src):
                end = _utc(src[idx + 1].effective_from) if idx + 1 < len(src) else _FOREVER
                ce = _CEra(idx, era, tz, k, end)
                if ce.start < ce.end:  # an era superseded before its anchor never runs
                    eras.append(ce)
            self.eras = tuple(eras)
        self.starts = [ce.start for ce in self.eras]

    def era_at(self, t: datetime) -> _CEra | None:
        eras = self.eras
        if len(eras) == 1:
            ce = eras[0]
            return ce if ce.start <= t < ce.end else None
        idx = bisect_right(self.starts, t) - 1
        if idx < 0:
            return None
        ce = self.eras[idx]
        return ce if t < ce.end else None


_CACHE_LIMIT = 20_000
_pos_indexes: dict[tuple[str, ...], dict[str, int]] = {}
_compiled: dict[int, tuple[RotationSpec, _CSpec]] = {}
_compiled_by_value: dict[RotationSpec, _CSpec] = {}


def _compile(spec: RotationSpec) -> _CSpec:
    # First by identity: hashing a whole spec costs more than resolving it.
    # The stored strong reference makes a stale id() hit impossible.
    hit = _compiled.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    # Then by value, so callers that rebuild equal specs per request (from
    # the ORM) still reuse the compiled form and its memo.
    try:
        cs = _compiled_by_value.get(spec)
        hashable = True
    except TypeError:  # lists instead of tuples somewhere: identity cache only
        cs = None
        hashable = False
    if cs is None:
        cs = _CSpec(spec)
        if hashable:
            if len(_compiled_by_value) >= _CACHE_LIMIT:
                _compiled_by_value.clear()
            _compiled_by_value[spec] = cs
    if len(_compiled) >= _CACHE_LIMIT:
        _compiled.clear()
    _compiled[id(spec)] = (spec, cs)
    return cs


# Internal normalised records: plain tuples are much cheaper than dataclasses.
# exclusion: (start, end, user_id, id)
# override:  (start, end, user_id, position_index | None, replaces_user_id | None, id)


def _norm_exclusions(
    exclusions: Iterable[Exclusion],
    lo: datetime,
    hi: datetime,
    users: frozenset[int] | None = None,
) -> list[tuple[datetime, datetime, int, int | None]]:
    out = []
    for x in exclusions:
        xs = x.start
        xe = x.end
        # Comparing datetimes of different zones costs ~1.3 us each: convert first unless UTC.
        if xs.tzinfo is not UTC:
            xs = _utc(xs)
        if xe.tzinfo is not UTC:
            xe = _utc(xe)
        if xs < hi and xe > lo and xs < xe and (users is None or x.user_id in users):
            out.append((xs, xe, x.user_id, x.id))
    if len(out) < 2:
        return out
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
        s = o.start
        e = o.end
        if s.tzinfo is not UTC:
            s = _utc(s)
        if e.tzinfo is not UTC:
            e = _utc(e)
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
    if len(out) > 1:
        out.sort(key=lambda r: (r[0], -1 if r[5] is None else r[5]))
    return out


# --------------------------------------------------------------------------
# Segment construction
# --------------------------------------------------------------------------


def _relevant(
    base: tuple[int | None, ...], exs: Sequence, ovs: Sequence, a: datetime, b: datetime
) -> tuple[Sequence, Sequence]:
    """Exclusions/overrides of [a, b) that can change the answer for this group.

    If no holder of the group is excluded, the other participants' exclusions
    cannot matter (they only restrict who may cover), and replace-overrides
    can only hit the holders.  Dropping the rest avoids needless cuts.
    """
    if exs:
        kept = []
        holder_excluded = False
        for x in exs:
            if x[0] < b and x[1] > a:
                kept.append(x)
                if x[2] in base:
                    holder_excluded = True
        exs = kept if holder_excluded else ()
    if ovs:
        kept = []
        for o in ovs:
            if o[0] < b and o[1] > a and (exs or o[3] is not None or o[4] in base):
                kept.append(o)
        ovs = kept
    return exs, ovs


def _keys_at(ce: _CEra, i: int, base: tuple, p: datetime, exs: Sequence, ovs: Sequence) -> list[tuple]:  # noqa: C901 (pure resolver hot path, left whole by design)
    """Per position (user, reason, override_id, exclusion_id) at instant p."""
    k = len(base)
    excluded: dict[int, int | None] | None = None
    for x in exs:
        # exs is sorted by (start, id): the first match names the exclusion.
        if x[0] <= p < x[1]:
            if excluded is None:
                excluded = {x[2]: x[3]}
            elif x[2] not in excluded:
                excluded[x[2]] = x[3]
    if excluded is None:
        keys = list(ce.plain_keys(i))
        routed = base
    else:
        keys = []
        participants = ce.participants
        n = ce.n
        held = {u for u in base if u is not None and u not in excluded}
        routed: list[int | None] = []
        for u in base:
            if u is None:
                keys.append((None, _GAP, None, None))
                routed.append(None)
            elif u not in excluded:
                keys.append((u, _ROTATION, None, None))
                routed.append(u)
            else:
                # Cover: first eligible participant after the group, wrapping.
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
    # ovs is sorted by (start, id), so the later override wins.
    for o in ovs:
        if o[0] <= p < o[1]:
            if o[3] is not None:
                keys[o[3]] = (o[2], _OVERRIDE, o[5], None)
            else:
                rep = o[4]
                for j in range(k):
                    if routed[j] == rep:
                        keys[j] = (o[2], _OVERRIDE, o[5], None)
    return keys


def _cuts(a: datetime, b: datetime, exs: Sequence, ovs: Sequence) -> list[datetime]:
    pts = {a, b}
    for x in exs:
        pts.add(x[0])
        pts.add(x[1])
    for o in ovs:
        pts.add(o[0])
        pts.add(o[1])
    out = [p for p in pts if a <= p <= b]
    out.sort()
    return out


def _emit_piece(
    cs: _CSpec,
    ce: _CEra,
    i: int,
    a: datetime,
    b: datetime,
    exs: Sequence,
    ovs: Sequence,
    out: list[Shift],
) -> None:
    """Append the merged segments of shift i restricted to [a, b)."""
    positions = cs.positions
    rid = cs.id
    era_index = ce.index
    base = ce.group(i)
    exs, ovs = _relevant(base, exs, ovs, a, b)
    if not exs and not ovs:
        for j, u in enumerate(base):
            out.append(
                _mk_shift(
                    rid,
                    positions[j],
                    j,
                    u,
                    a,
                    b,
                    _ROTATION if u is not None else _GAP,
                    u,
                    i,
                    era_index,
                )
            )
        return
    cuts = _cuts(a, b, exs, ovs)
    open_: list = [None] * len(base)  # per position: (key, start)
    for idx in range(len(cuts) - 1):
        p = cuts[idx]
        keys = _keys_at(ce, i, base, p, exs, ovs)
        for j, key in enumerate(keys):
            cur = open_[j]
            if cur is not None:
                if cur[0] == key:
                    continue
                _close(out, rid, positions[j], j, base[j], i, era_index, cur[0], cur[1], p)
            open_[j] = (key, p)
    for j, cur in enumerate(open_):
        _close(out, rid, positions[j], j, base[j], i, era_index, cur[0], cur[1], b)


def _segments_at(
    cs: _CSpec,
    ce: _CEra,
    i: int,
    a: datetime,
    b: datetime,
    exs: Sequence,
    ovs: Sequence,
    at: datetime,
) -> list[Shift]:
    """The merged segments of shift i ([a, b)) covering `at`.

    Same answer as filtering _emit_piece's output, but evaluates only the
    elementary intervals around `at` until every position's holder changes.
    `exs`/`ovs` must already be narrowed by _relevant().
    """
    if not exs:
        return _override_segments_at(cs, ce, i, a, b, ovs, at)
    positions = cs.positions
    rid = cs.id
    era_index = ce.index
    base = ce.group(i)
    k = len(base)
    cuts = _cuts(a, b, exs, ovs)
    idx = bisect_right(cuts, at) - 1
    keys = _keys_at(ce, i, base, cuts[idx], exs, ovs)
    starts = [cuts[idx]] * k
    ends = [cuts[idx + 1]] * k
    # Walk outwards one elementary interval at a time while a position's holder is unchanged.
    todo = list(range(k))
    left = idx - 1
    while todo and left >= 0:
        p = cuts[left]
        other = _keys_at(ce, i, base, p, exs, ovs)
        still = []
        for j in todo:
            if other[j] == keys[j]:
                starts[j] = p
                still.append(j)
        todo = still
        left -= 1
    todo = list(range(k))
    right = idx + 1
    last = len(cuts) - 1
    while todo and right < last:
        other = _keys_at(ce, i, base, cuts[right], exs, ovs)
        p = cuts[right + 1]
        still = []
        for j in todo:
            if other[j] == keys[j]:
                ends[j] = p
                still.append(j)
        todo = still
        right += 1
    out: list[Shift] = []
    for j in range(k):
        user, reason, oid, xid = keys[j]
        out.append(_mk_shift(rid, positions[j], j, user, starts[j], ends[j], reason, base[j], i, era_index, oid, xid))
    return out


def _override_segments_at(
    cs: _CSpec, ce: _CEra, i: int, a: datetime, b: datetime, ovs: Sequence, at: datetime
) -> list[Shift]:
    """_segments_at when only overrides apply (about half the calls of a typical roster).

    Without exclusions nobody is routed to a cover, so each position only changes at the
    bounds of the overrides aimed at it (by position or at its scheduled holder): every
    position is walked over its own few cut points instead of keys for the whole group.
    """
    positions = cs.positions
    rid = cs.id
    era_index = ce.index
    base = ce.group(i)
    out: list[Shift] = []
    for j, u in enumerate(base):
        # ovs is sorted by (start, id): the last active record wins, as in _keys_at.
        mine = [o for o in ovs if (o[3] == j if o[3] is not None else o[4] == u)]
        if not mine:
            out.append(_mk_shift(rid, positions[j], j, u, a, b, _ROTATION if u is not None else _GAP, u, i, era_index))
            continue
        pts = {a, b}
        for o in mine:
            if o[0] > a:
                pts.add(o[0])
            if o[1] < b:
                pts.add(o[1])
        cuts = sorted(pts)
        idx = bisect_right(cuts, at) - 1
        key = _override_holder(mine, cuts[idx])
        left = idx
        while left > 0 and _override_holder(mine, cuts[left - 1]) == key:
            left -= 1
        right = idx + 1
        last = len(cuts) - 1
        while right < last and _override_holder(mine, cuts[right]) == key:
            right += 1
        start, end = cuts[left], cuts[right]
        if key is None:
            reason = _ROTATION if u is not None else _GAP
            out.append(_mk_shift(rid, positions[j], j, u, start, end, reason, u, i, era_index))
        else:
            out.append(_mk_shift(rid, positions[j], j, key[0], start, end, _OVERRIDE, u, i, era_index, key[1], None))
    return out


def _override_holder(mine: list, p: datetime) -> tuple | None:
    """The override record in force at p (the last one applied), or None for the rotation.

    Compared by value like _keys_at's keys: the holder and the override id, so two records
    saying the same thing merge into one segment."""
    held = None
    for o in mine:
        if o[0] <= p < o[1]:
            held = o
    return held if held is None else (held[2], held[5])


def _close(out, rid, position, j, sched, i, era_index, key, start, end) -> None:
    user, reason, oid, xid = key
    out.append(_mk_shift(rid, position, j, user, start, end, reason, sched, i, era_index, oid, xid))


def _sort_key(sh: Shift) -> tuple[datetime, int]:
    return sh.start, sh.position_index


def _rotation_shifts(cs: _CSpec, exs_all: list, ovs_all: list, since: datetime, until: datetime) -> list[Shift]:
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
        # Sweep: exs/ovs are sorted by start and shifts advance, so keep only
        # the records that can still overlap (keeps long windows linear).
        xp = op = 0
        x_live: list = []
        o_live: list = []
        i, s, e = ce.locate(lo)
        while s < hi:
            a = max(lo, s)
            b = min(hi, e)
            while xp < len(exs) and exs[xp][0] < b:
                x_live.append(exs[xp])
                xp += 1
            while op < len(ovs) and ovs[op][0] < b:
                o_live.append(ovs[op])
                op += 1
            if x_live:
                x_live = [x for x in x_live if x[1] > a]
            if o_live:
                o_live = [o for o in o_live if o[1] > a]
            if wins is None:
                _emit_piece(cs, ce, i, a, b, x_live, o_live, out)
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
                        _emit_piece(cs, ce, i, pa, pb, x_live, o_live, out)
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


def oncall_at(  # noqa: C901 (pure resolver hot path, left whole by design)
    spec: RotationSpec,
    exclusions: Iterable[Exclusion],
    overrides: Iterable[Override],
    at: datetime,
) -> list[Shift]:
    """The (unclipped) segments covering `at`, one per position, gaps included."""
    if at.tzinfo is not UTC:
        at = _utc(at)
    hit = _compiled.get(id(spec))
    cs = hit[1] if hit is not None and hit[0] is spec else _compile(spec)
    eras = cs.eras
    if len(eras) == 1:
        ce = eras[0]
        if not (ce.start <= at < ce.end):
            return []
    else:
        ce = cs.era_at(at)
        if ce is None:
            return []
    # Memo of the last located shift piece: (start, end, index, plain Shifts
    # or None).  Shifts last hours to weeks, so "who is on call now" polling
    # mostly skips the boundary arithmetic.
    memo = ce.memo
    if memo is not None and memo[0] <= at < memo[1]:
        s, e, i, plain = memo
    else:
        i, s, e = ce.locate(at)
        if s < ce.start:
            s = ce.start
        if e > ce.end:
            e = ce.end
        if ce.windows:
            for ws, we in ce.window_intervals(s, e):
                if ws <= at < we:
                    s, e = ws, we
                    break
            else:
                return []
        plain = None
        ce.memo = (s, e, i, None)
    exs = _norm_exclusions(exclusions, s, e, ce.pset)
    ovs = _norm_overrides(cs, overrides, s, e)
    if exs or ovs:
        exs, ovs = _relevant(ce.group(i), exs, ovs, s, e)
        if exs or ovs:
            sm = ce.seg_memo
            if sm is not None and sm[2] <= at < sm[3] and sm[0] == exs and sm[1] == ovs:
                return list(sm[4])
            segs = _segments_at(cs, ce, i, s, e, exs, ovs, at)
            # Valid wherever every returned segment still covers the instant.
            lo = segs[0].start
            hi = segs[0].end
            for sh in segs:
                if sh.start > lo:
                    lo = sh.start
                if sh.end < hi:
                    hi = sh.end
            ce.seg_memo = (exs, ovs, lo, hi, tuple(segs))
            return segs
    if plain is None:
        # Shifts are immutable, so the plain answer can be shared.
        positions = cs.positions
        rid = cs.id
        era_index = ce.index
        plain = tuple(
            _mk_shift(rid, positions[j], j, u, s, e, _ROTATION if u is not None else _GAP, u, i, era_index)
            for j, u in enumerate(ce.group(i))
        )
        ce.memo = (s, e, i, plain)
    return list(plain)


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


def cycle_offset(spec: RotationSpec, index: int) -> int:
    """The ``offset`` for ``spec.eras[index]`` that continues the cycle of the eras before it.

    ``spec.eras[index].offset`` is ignored; the eras before it are taken as given (with their
    offsets).  Let ``t`` be the instant the era starts (its ``effective_from``, or its anchor
    if later), ``X`` the holder of the first position at ``t`` under the era before (the one
    starting a shift at ``t`` at a handoff, the one on call mid-shift) and ``W`` the holder of
    the first position in that era's shift before.  The era's first shift is led by:

    * ``X`` if still a participant: whoever was next stays next, and the cycle goes on in the
      new participant order from ``X`` (so a newcomer appended at the end of the list serves
      at the end of the current cycle, one inserted elsewhere where they were put);
    * else the first participant after ``X`` in the previous order who is still there (a
      removed person's turn passes to the next);
    * never ``W`` while anyone else is a participant (nobody leads twice in a row), except that
      mid-shift ``X`` stays on call if still a participant; when only ``W`` and newcomers
      remain, the participant after ``W`` in the new order.

    Without a previous era that ran (or with an empty one), the first participant leads.
    Rotation shifts only: exclusions and overrides do not move the cycle.
    """
    eras = spec.eras
    new = eras[index]
    q = tuple(new.participants)
    m = len(q)
    if m == 0:
        return 0
    tz = _zone(spec.time_zone)
    k = len(spec.positions)
    cn = _CEra(index, Era(new.effective_from, new.anchor, new.unit, new.length, q), tz, k, _FOREVER)
    t = cn.start
    first, _, _ = cn.locate(t)
    prev: _CEra | None = None
    for idx in range(index - 1, -1, -1):
        ce = _CEra(idx, eras[idx], tz, k, _utc(eras[idx + 1].effective_from))
        if ce.start < ce.end and ce.start < t:  # the latest era that ran before t
            prev = ce if ce.n else None
            break
    if prev is None:
        lead = q[0]
    else:
        i, s, _ = prev.locate(t)
        p = prev.participants  # already rotated by its offset: shift i is led by p[i % n]
        n = prev.n
        x = i % n
        present = set(q)
        last = p[(i - 1) % n] if s > prev.start else None
        if s < t and p[x] in present:
            lead = p[x]  # mid-shift: whoever is on call stays on call
        else:
            alone = all(u == last for u in q)  # nobody but `last` could lead
            lead = next(
                (u for d in range(n) if (u := p[(x + d) % n]) in present and (u != last or alone)),
                None,
            )
        if lead is None:
            after = q.index(last) + 1 if last in present else 0
            lead = next(u for d in range(m) if (u := q[(after + d) % m]) != last)
    return (q.index(lead) - first) % m
