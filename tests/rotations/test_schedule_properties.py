"""Property tests for the schedule resolver (hypothesis, no Django)."""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotations.schedule import (
    Era,
    Exclusion,
    Override,
    Reason,
    RotationSpec,
    Window,
    handoffs,
    oncall_at,
    rotation_shifts,
)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/Chicago",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/St_Johns",
]
UNITS = ["hours", "days", "weeks", "months"]
POSITIONS = ("primary", "secondary", "tertiary")
# Start dates near the DST changes of the zones above (both hemispheres).
BASES = [
    datetime(2026, 3, 1, tzinfo=UTC),
    datetime(2026, 9, 25, tzinfo=UTC),
    datetime(2026, 10, 20, tzinfo=UTC),
]
USERS = range(1, 9)

PROFILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def windows(draw):
    start = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30])))
    end = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30])))
    weekday = draw(st.one_of(st.none(), st.integers(0, 6)))
    return Window(start, end, weekday)


@st.composite
def rotation_specs(draw, restrictions=True, max_eras=3):
    tz_name = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(tz_name)
    base = draw(st.sampled_from(BASES))
    k = draw(st.integers(1, 3))
    eras = []
    eff = base + timedelta(minutes=draw(st.integers(-60 * 24 * 10, 60 * 24 * 10)))
    for _ in range(draw(st.integers(1, max_eras))):
        n = draw(st.integers(1, 6))
        participants = tuple(draw(st.permutations(list(USERS)))[:n])
        unit = draw(st.sampled_from(UNITS))
        length = draw(st.integers(1, 12 if unit == "hours" else 3))
        local = eff.astimezone(tz).replace(tzinfo=None) + timedelta(days=draw(st.integers(-400, 3)))
        local = local.replace(
            hour=draw(st.integers(0, 23)),
            minute=draw(st.sampled_from([0, 30])),
            second=0,
            microsecond=0,
        )
        anchor = local.replace(tzinfo=tz)
        wins = tuple(draw(st.lists(windows(), min_size=1, max_size=2))) if restrictions and draw(st.booleans()) else ()
        eras.append(Era(eff, anchor, unit, length, participants, wins))
        eff += timedelta(minutes=draw(st.integers(60, 60 * 24 * 30)))
    return RotationSpec(1, 1, tz_name, POSITIONS[:k], tuple(eras))


@st.composite
def scenarios(draw, restrictions=True):
    spec = draw(rotation_specs(restrictions=restrictions))
    since = spec.eras[0].effective_from + timedelta(minutes=draw(st.integers(-60 * 24 * 3, 60 * 24 * 20)))
    until = since + timedelta(minutes=draw(st.integers(30, 60 * 24 * 30)))
    minutes = st.integers(int((since - timedelta(days=3)).timestamp() // 60), int(until.timestamp() // 60))

    def instant(m):
        return datetime.fromtimestamp(m * 60, UTC)

    exclusions = []
    for idx in range(draw(st.integers(0, 6))):
        s = instant(draw(minutes))
        e = s + timedelta(minutes=draw(st.integers(30, 60 * 24 * 6)))
        exclusions.append(Exclusion(draw(st.sampled_from(USERS)), s, e, id=100 + idx))
    overrides = []
    for idx in range(draw(st.integers(0, 4))):
        s = instant(draw(minutes))
        e = s + timedelta(minutes=draw(st.integers(30, 60 * 24 * 4)))
        rid = draw(st.sampled_from([1, 1, 1, 2]))
        user = draw(st.integers(1, 9))
        if draw(st.booleans()):
            overrides.append(
                Override(
                    rid,
                    user,
                    s,
                    e,
                    position=draw(st.sampled_from(POSITIONS)),
                    id=200 + idx,
                )
            )
        else:
            overrides.append(
                Override(
                    rid,
                    user,
                    s,
                    e,
                    replaces_user_id=draw(st.sampled_from(USERS)),
                    id=200 + idx,
                )
            )
    return spec, exclusions, overrides, since, until


# --------------------------------------------------------------------------
# independent helpers
# --------------------------------------------------------------------------


def by_position(shifts):
    out: dict[int, list] = {}
    for s in shifts:
        out.setdefault(s.position_index, []).append(s)
    return out


def covering(segs, starts, t):
    idx = bisect_right(starts, t) - 1
    if idx >= 0 and segs[idx].start <= t < segs[idx].end:
        return segs[idx]
    return None


def era_of(spec, t):
    """Era index in effect at t, or None (computed without the resolver)."""
    found = None
    for idx, era in enumerate(spec.eras):
        if era.effective_from <= t:
            found = idx
    return found


def first_handoff(spec, era):
    if era.unit == "hours":
        return era.anchor
    tz = ZoneInfo(spec.time_zone)
    return era.anchor.astimezone(tz).replace(tzinfo=None, fold=0).replace(tzinfo=tz)


def in_window(local, w):
    tod = local.time().replace(fold=0)
    wd = local.weekday()
    if w.start < w.end:
        return (w.weekday is None or wd == w.weekday) and w.start <= tod < w.end
    today = (w.weekday is None or wd == w.weekday) and tod >= w.start
    yesterday = (w.weekday is None or (wd - 1) % 7 == w.weekday) and tod < w.end
    return today or yesterday


def near_offset_change(tz, t):
    offsets = {(t + timedelta(hours=h)).astimezone(tz).utcoffset() for h in (-3, 0, 3)}
    return len(offsets) > 1


def explained_absence(spec, t):
    """Why the rotation may legitimately have nobody (not even a gap) at t."""
    idx = era_of(spec, t)
    if idx is None:
        return True
    era = spec.eras[idx]
    if t < first_handoff(spec, era):
        return True
    if era.restrictions:
        tz = ZoneInfo(spec.time_zone)
        if near_offset_change(tz, t):
            return True  # wall-clock windows are fuzzy around DST changes
        return not any(in_window(t.astimezone(tz), w) for w in era.restrictions)
    return False


def key(s):
    return (
        s.position_index,
        s.user_id,
        s.reason,
        s.scheduled_user_id,
        s.shift_index,
        s.era_index,
        s.override_id,
        s.exclusion_id,
    )


def merged(shifts):
    out = []
    for s in sorted(shifts, key=lambda s: (s.position_index, s.start)):
        if out and out[-1][:-2] == key(s) and out[-1][-1] == s.start:
            out[-1] = (*out[-1][:-1], s.end)
        else:
            out.append((*key(s), s.start, s.end))
    return sorted(out, key=lambda r: (r[-2], r[0]))


def flat(shifts):
    return sorted(((*key(s), s.start, s.end) for s in shifts), key=lambda r: (r[-2], r[0]))


# --------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------


@PROFILE
@given(scenarios())
def test_segments_tile_and_never_overlap(sc):
    spec, exclusions, overrides, since, until = sc
    shifts = rotation_shifts(spec, exclusions, overrides, since, until)
    assert shifts == sorted(shifts, key=lambda s: (s.start, s.position_index))
    groups = by_position(shifts)
    coverage = None
    for segs in groups.values():
        for s in segs:
            assert since <= s.start < s.end <= until
            assert s.start.tzinfo is UTC and s.end.tzinfo is UTC
            assert (s.user_id is None) == (s.reason is Reason.GAP)
        for prev, nxt in itertools.pairwise(segs):
            assert prev.end <= nxt.start
        # Every position is covered (by someone or an explicit gap) at the same times.
        spans = []
        for s in segs:
            if spans and spans[-1][1] == s.start:
                spans[-1] = (spans[-1][0], s.end)
            else:
                spans.append((s.start, s.end))
        coverage = spans if coverage is None else coverage
        assert spans == coverage
    # Holes in the coverage must be explained: before an anchor or restricted.
    coverage = coverage or []
    edges = [since, *[x for span in coverage for x in span], until]
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        if lo < hi:
            for t in (lo, lo + (hi - lo) / 2):
                assert explained_absence(spec, t), t
    # Conversely, segments only exist inside their own era, after its anchor.
    for s in shifts:
        mid = s.start + (s.end - s.start) / 2
        assert era_of(spec, mid) == s.era_index
        if not spec.eras[s.era_index].restrictions:
            assert not explained_absence(spec, mid)


@PROFILE
@given(scenarios())
def test_no_double_booking_no_excluded_and_overrides_win(sc):
    spec, exclusions, overrides, since, until = sc
    shifts = rotation_shifts(spec, exclusions, overrides, since, until)
    groups = by_position(shifts)
    starts = {j: [s.start for s in segs] for j, segs in groups.items()}

    def at(t):
        return [c for j, segs in groups.items() if (c := covering(segs, starts[j], t)) is not None]

    # (2) nobody in two positions at once unless an override put them there.
    for t in sorted({s.start for s in shifts}):
        here = at(t)
        users = Counter(s.user_id for s in here if s.user_id is not None and s.reason is not Reason.OVERRIDE)
        assert all(c == 1 for c in users.values()), here

    # (3) an excluded user is never on call except via override.
    for s in shifts:
        if s.reason is Reason.OVERRIDE or s.user_id is None:
            continue
        for x in exclusions:
            assert not (x.user_id == s.user_id and x.start < s.end and x.end > s.start), (s, x)
        if s.reason is Reason.COVER:
            assert s.exclusion_id is not None and s.user_id != s.scheduled_user_id

    # (4) overrides win.
    mine = [o for o in overrides if o.rotation_id == spec.id]
    for o in mine:
        for t in (o.start, o.start + (o.end - o.start) / 2):
            if not (since <= t < until):
                continue
            here = at(t)
            if not here:
                continue  # rotation inactive there
            if o.replaces_user_id is not None:
                assert all(s.user_id != o.replaces_user_id or s.reason is Reason.OVERRIDE for s in here)
            later = [p for p in mine if p is not o and p.start <= t < p.end and (p.start, p.id) > (o.start, o.id)]
            if o.position is not None and o.position in spec.positions and not later:
                s = next(s for s in here if s.position == o.position)
                assert (s.user_id, s.reason, s.override_id) == (
                    o.user_id,
                    Reason.OVERRIDE,
                    o.id,
                )


@PROFILE
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 3),
    m=st.integers(1, 3),
    unit=st.sampled_from(UNITS),
    length=st.integers(1, 3),
    tz=st.sampled_from(ZONES),
    offset_days=st.integers(-2000, 0),
)
def test_fairness(n, k, m, unit, length, tz, offset_days):
    anchor = datetime(2026, 3, 5, 2, 30, tzinfo=ZoneInfo(tz)) + timedelta(days=offset_days)
    people = tuple(range(1, n + 1))
    spec = RotationSpec(1, 1, tz, POSITIONS[:k], (Era(anchor, anchor, unit, length, people),))
    # Start at a shift boundary found via oncall_at, away from the anchor.
    probe = datetime(2026, 3, 20, tzinfo=UTC)
    first = oncall_at(spec, [], [], probe)[0]
    horizon = {
        "hours": timedelta(hours=1),
        "days": timedelta(days=1),
        "weeks": timedelta(weeks=1),
    }.get(unit, timedelta(days=31))
    shifts = rotation_shifts(
        spec,
        [],
        [],
        first.start,
        first.start + horizon * length * n * m + timedelta(days=1),
    )
    shifts = [s for s in shifts if s.shift_index < first.shift_index + n * m]
    counts = Counter((s.user_id, s.position) for s in shifts)
    for j, pos in enumerate(POSITIONS[:k]):
        for u in people:
            assert counts[(u, pos)] == (m if j < n else 0)
        if j >= n:
            assert counts[(None, pos)] == n * m


@PROFILE
@given(
    scenarios(),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
    st.lists(st.floats(0.0, 1.0), max_size=6),
)
def test_window_independence_and_oncall_agreement(sc, cuts, probes):
    spec, exclusions, overrides, since, until = sc
    full = rotation_shifts(spec, exclusions, overrides, since, until)
    span = until - since
    points = sorted({since, until, *[since + span * c for c in cuts]})
    parts = []
    for lo, hi in itertools.pairwise(points):
        parts.extend(rotation_shifts(spec, exclusions, overrides, lo, hi))
    assert merged(parts) == flat(full)

    groups = by_position(full)
    starts = {j: [s.start for s in segs] for j, segs in groups.items()}
    instants = [since + span * p for p in probes] + [s.start for s in full[:20]]
    for t in instants:
        if not (since <= t < until):
            continue
        expected = [c for j, segs in groups.items() if (c := covering(segs, starts[j], t)) is not None]
        got = oncall_at(spec, exclusions, overrides, t)
        assert [s.start <= t < s.end for s in got] == [True] * len(got)
        clipped = [(*key(s), max(s.start, since), min(s.end, until)) for s in got]
        assert sorted(clipped) == sorted((*key(s), s.start, s.end) for s in expected)


@PROFILE
@given(scenarios())
def test_handoffs_are_exactly_the_holder_changes(sc):
    spec, exclusions, overrides, since, until = sc
    margin = timedelta(days=1)
    segs = rotation_shifts(spec, exclusions, overrides, since - margin, until + margin)
    groups = by_position(segs)
    starts = {j: [s.start for s in g] for j, g in groups.items()}

    def holder(j, t):
        if j not in groups:
            return None
        c = covering(groups[j], starts[j], t)
        return None if c is None else c.user_id

    hs = handoffs(spec, exclusions, overrides, since, until)
    seen = set()
    for h in hs:
        j = spec.positions.index(h.position)
        assert since < h.at <= until
        assert h.outgoing_user_id != h.incoming_user_id
        assert h.outgoing_user_id == holder(j, h.at - timedelta(microseconds=1))
        assert h.incoming_user_id == holder(j, h.at)
        seen.add((j, h.at))
    # Conversely every change of holder at a segment edge is reported.
    for j, g in groups.items():
        for t in {s.start for s in g} | {s.end for s in g}:
            if since < t <= until and holder(j, t - timedelta(microseconds=1)) != holder(j, t):
                assert (j, t) in seen


@PROFILE
@given(scenarios(), st.booleans(), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_override_only_fast_path_matches_the_general_walk(sc, drop_ids, probes):
    """_segments_at answers an overrides-only shift per position; the general walk over every
    cut (forced by an exclusion that is never active) must say exactly the same, also when
    overrides carry no id and so compare equal by value."""
    from rotations import schedule

    spec, _, overrides, since, until = sc
    if drop_ids:
        overrides = [
            Override(o.rotation_id, o.user_id, o.start, o.end, o.position, o.replaces_user_id, None) for o in overrides
        ]
    cs = schedule._compile(spec)
    span = until - since
    for p in probes:
        at = since + span * p
        ce = cs.era_at(at)
        if ce is None or at < ce.anchor_utc:
            continue
        i, s, e = ce.locate(at)
        s, e = max(s, ce.start), min(e, ce.end)
        ovs = schedule._norm_overrides(cs, overrides, s, e)
        _, ovs = schedule._relevant(ce.group(i), [], ovs, s, e)
        if not ovs:
            continue
        inert = [(s - timedelta(days=2), s - timedelta(days=1), -1, None)]
        fast = schedule._segments_at(cs, ce, i, s, e, [], ovs, at)
        general = schedule._segments_at(cs, ce, i, s, e, inert, ovs, at)
        assert fast == general
