"""Fairness across definition changes (hypothesis, no Django).

A rotation is changed at random handoffs (add, remove, reorder, several at once) and each new
era gets the offset the service would store (schedule.cycle_offset). Guaranteed, and tested:

1. Per position, nobody holds two consecutive shifts while another participant of the era then
   in force exists (across changes too).
2. Nobody holds two positions of one shift.
3. Within an era of m participants, any m consecutive shifts give every participant each
   position exactly once (so counts per person differ by at most one: here by zero) — for
   positions below m; the rest are gaps.
4. Two positions: when at every change the person next for primary stays in the rotation and
   every era has at least two people, each person's shifts alternate secondary/primary through
   the whole history, so in any run of consecutive shifts their primary and secondary counts
   differ by at most one (over two whole cycles of an era: exactly two each).
   When the next primary is removed, whoever takes that turn may lead twice without a secondary
   between: not guaranteed then.

Not guaranteed: a run of m shifts that straddles a change (a reorder may bring back someone
who served just before the change sooner than a full cycle).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotations.schedule import Era, RotationSpec, cycle_offset, oncall_at, rotation_shifts

ZONES = ["UTC", "Europe/Berlin", "America/Chicago", "Australia/Sydney", "America/St_Johns"]
UNITS = ["hours", "days", "weeks", "months"]
BASES = [datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC)]
USERS = list(range(1, 10))
PROFILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def changed(draw, before: tuple[int, ...]) -> tuple[int, ...]:
    """A new participant list from `before`: additions (anywhere), removals, reorders, mixed."""
    kind = draw(st.sampled_from(["add", "remove", "reorder", "mixed"]))
    out = list(before)
    if kind in ("remove", "mixed") and out:
        for u in draw(st.lists(st.sampled_from(out), unique=True, max_size=len(out))):
            out.remove(u)
    if kind in ("add", "mixed"):
        free = [u for u in USERS if u not in out]
        for u in draw(st.lists(st.sampled_from(free), unique=True, min_size=1, max_size=3)) if free else ():
            out.insert(draw(st.integers(0, len(out))), u)
    if kind in ("reorder", "mixed"):
        out = list(draw(st.permutations(out)))
    return tuple(out) or (before[:1] if before else (USERS[0],))


@st.composite
def scenarios(draw):
    tz = ZoneInfo(draw(st.sampled_from(ZONES)))
    unit = draw(st.sampled_from(UNITS))
    length = draw(st.integers(1, 6 if unit == "hours" else 2))
    base = draw(st.sampled_from(BASES)).astimezone(tz)
    anchor = base.replace(hour=draw(st.integers(0, 23)), minute=draw(st.sampled_from([0, 30])))
    k = draw(st.integers(1, 2))
    first = tuple(draw(st.permutations(USERS))[: draw(st.integers(1, 5))])
    lists = [first]
    at = [0]  # shift index where each era starts
    for _ in range(draw(st.integers(1, 3))):
        lists.append(draw(changed(lists[-1])))
        at.append(at[-1] + draw(st.integers(1, 9)))
    return tz, unit, length, anchor, ("primary", "secondary")[:k], lists, at


def _bounds(tz, unit, length, anchor, count):
    """Start of shifts 0..count, from the resolver itself (local handoffs across DST)."""
    probe = RotationSpec(1, 1, str(tz), ("p",), (Era(anchor, anchor, unit, length, (1,)),))
    span = {"hours": timedelta(hours=length), "days": timedelta(days=length), "weeks": timedelta(weeks=length)}
    step = span.get(unit, timedelta(days=31 * length))
    got = rotation_shifts(probe, [], [], anchor, anchor + step * (count + 2))
    return [s.start for s in got][: count + 1]


def _build(tz, unit, length, anchor, positions, lists, at, bounds):
    """The spec after each change, and who was next for primary at each change."""
    spec = RotationSpec(1, 1, str(tz), positions, (Era(anchor, anchor, unit, length, lists[0]),))
    nexts = []
    for people, h in zip(lists[1:], at[1:], strict=True):
        eff = bounds[h]
        nexts.append(oncall_at(spec, [], [], eff)[0].user_id)
        spec = dataclasses.replace(spec, eras=(*spec.eras, Era(eff, anchor, unit, length, people)))
        offset = cycle_offset(spec, len(spec.eras) - 1)
        spec = dataclasses.replace(spec, eras=(*spec.eras[:-1], dataclasses.replace(spec.eras[-1], offset=offset)))
    return spec, nexts


@PROFILE
@given(scenarios())
def test_changes_at_handoffs_keep_the_rotation_fair(scenario):
    tz, unit, length, anchor, positions, lists, at = scenario
    k = len(positions)
    horizon = at[-1] + 2 * len(lists[-1]) + 2
    bounds = _bounds(tz, unit, length, anchor, horizon)
    spec, nexts = _build(tz, unit, length, anchor, positions, lists, at, bounds)
    shifts = rotation_shifts(spec, [], [], bounds[0], bounds[horizon])
    # One segment per shift and position: no restrictions, exclusions or overrides.
    holders = [tuple(s.user_id for s in shifts if s.start == b) for b in bounds[:horizon]]
    assert all(len(h) == k for h in holders)
    era_of = [max(e for e, h in enumerate(at) if h <= i) for i in range(horizon)]

    for i in range(1, horizon):  # 1.
        people = lists[era_of[i]]
        for j in range(k):
            u = holders[i][j]
            if u is not None and u == holders[i - 1][j]:
                assert set(people) == {u}, (i, j, holders)
    for h in holders:  # 2.
        named = [u for u in h if u is not None]
        assert len(named) == len(set(named))
    for e, people in enumerate(lists):  # 3.
        m = len(people)
        end = at[e + 1] if e + 1 < len(at) else horizon
        for s in range(at[e], end - m + 1):
            for j in range(k):
                window = [holders[i][j] for i in range(s, s + m)]
                assert sorted(window, key=str) == sorted(people if j < m else [None] * m, key=str)
    if k == 2 and all(len(p) >= 2 for p in lists) and all(x in p for x, p in zip(nexts, lists[1:], strict=True)):
        events: dict[int, list[int]] = {}  # 4.
        for h in holders:
            for j, u in enumerate(h):
                events.setdefault(u, []).append(j)
        for u, seq in events.items():
            assert all(a != b for a, b in zip(seq, seq[1:], strict=False)), (u, seq, holders)


@PROFILE
@given(scenarios(), st.floats(0.01, 0.99))
def test_mid_shift_change_keeps_the_holder_on_call(scenario, fraction):
    tz, unit, length, anchor, positions, lists, at = scenario
    bounds = _bounds(tz, unit, length, anchor, at[1] + 1)
    before = RotationSpec(1, 1, str(tz), positions, (Era(anchor, anchor, unit, length, lists[0]),))
    eff = bounds[at[1]] + (bounds[at[1] + 1] - bounds[at[1]]) * fraction
    was = [s.user_id for s in oncall_at(before, [], [], eff)]
    spec = dataclasses.replace(before, eras=(*before.eras, Era(eff, anchor, unit, length, lists[1])))
    offset = cycle_offset(spec, 1)
    spec = dataclasses.replace(spec, eras=(before.eras[0], dataclasses.replace(spec.eras[1], offset=offset)))
    now = [s.user_id for s in oncall_at(spec, [], [], eff)]
    if was[0] in lists[1]:
        assert now[0] == was[0]
    else:
        assert now[0] in lists[1]
    named = [u for u in now if u is not None]
    assert len(named) == len(set(named))
