"""Explicit examples for the schedule resolver (no Django needed)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from rotations.schedule import (
    Era,
    Exclusion,
    Override,
    Reason,
    RotationSpec,
    Window,
    coverage_gaps,
    handoffs,
    oncall_at,
    rotation_shifts,
    team_oncall_at,
    team_shifts,
)

A, B, C, D, E = 1, 2, 3, 4, 5
BERLIN = ZoneInfo("Europe/Berlin")
CHICAGO = ZoneInfo("America/Chicago")
SYDNEY = ZoneInfo("Australia/Sydney")
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def spec_of(
    participants=(A, B, C, D),
    positions=("primary", "secondary"),
    unit="days",
    length=1,
    anchor=T0,
    tz="UTC",
    restrictions=(),
    rid=1,
    eras=None,
) -> RotationSpec:
    if eras is None:
        eras = (Era(anchor, anchor, unit, length, tuple(participants), tuple(restrictions)),)
    return RotationSpec(rid, 10, tz, tuple(positions), tuple(eras))


def holders(shifts, shift_index):
    return [s.user_id for s in shifts if s.shift_index == shift_index]


def at_users(spec, at, exclusions=(), overrides=()):
    return {s.position: s.user_id for s in oncall_at(spec, exclusions, overrides, at)}


# --------------------------------------------------------------------------
# fair cycling
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("positions", "expected"),
    [
        (("primary",), [[A], [B], [C], [D], [A]]),
        (("primary", "secondary"), [[A, B], [B, C], [C, D], [D, A], [A, B]]),
        (("p", "s", "t"), [[A, B, C], [B, C, D], [C, D, A], [D, A, B], [A, B, C]]),
    ],
)
def test_fair_cycling(positions, expected):
    spec = spec_of(positions=positions)
    shifts = rotation_shifts(spec, [], [], T0, T0 + timedelta(days=5))
    assert len(shifts) == 5 * len(positions)
    assert [holders(shifts, i) for i in range(5)] == expected
    assert all(s.reason is Reason.ROTATION for s in shifts)
    assert [s.position_index for s in shifts[: len(positions)]] == list(range(len(positions)))


def test_more_positions_than_people_is_a_gap_never_a_double():
    spec = spec_of(participants=(A, B), positions=("p", "s", "t"))
    shifts = rotation_shifts(spec, [], [], T0, T0 + timedelta(days=2))
    first = [s for s in shifts if s.shift_index == 0]
    assert [s.user_id for s in first] == [A, B, None]
    assert first[2].reason is Reason.GAP and first[2].scheduled_user_id is None
    assert [s.user_id for s in shifts if s.shift_index == 1] == [B, A, None]


def test_before_anchor_nobody():
    spec = spec_of()
    assert oncall_at(spec, [], [], T0 - timedelta(seconds=1)) == []
    shifts = rotation_shifts(spec, [], [], T0 - timedelta(days=3), T0 + timedelta(hours=1))
    assert shifts[0].start == T0


# --------------------------------------------------------------------------
# exclusions
# --------------------------------------------------------------------------


def test_exclusion_whole_shift_covered_by_next_after_group():
    spec = spec_of()
    ex = [Exclusion(B, T0 - timedelta(days=1), T0 + timedelta(days=10), id=99)]
    # Shift 0: A/B scheduled; B is away -> first after the group is C.
    got = oncall_at(spec, ex, [], T0 + timedelta(hours=1))
    assert [(s.user_id, s.reason, s.scheduled_user_id) for s in got] == [
        (A, Reason.ROTATION, A),
        (C, Reason.COVER, B),
    ]
    assert got[1].exclusion_id == 99
    # Shift 1: B/C scheduled; C holds secondary so cover for primary is D.
    got = at_users(spec, T0 + timedelta(days=1, hours=1), ex)
    assert got == {"primary": D, "secondary": C}


def test_cover_skips_excluded_candidates():
    spec = spec_of(participants=(A, B, C, D, E))
    ex = [
        Exclusion(A, T0, T0 + timedelta(days=1)),
        Exclusion(C, T0, T0 + timedelta(days=1)),
    ]
    # Group A/B; candidates C (excluded), D -> D covers A.
    assert at_users(spec, T0, ex) == {"primary": D, "secondary": B}


def test_partial_exclusion_splits_the_shift():
    spec = spec_of()
    ex = [Exclusion(A, T0 + timedelta(hours=6), T0 + timedelta(hours=12), id=5)]
    shifts = rotation_shifts(spec, ex, [], T0, T0 + timedelta(days=1))
    primary = [(s.user_id, s.start, s.end, s.reason) for s in shifts if s.position == "primary"]
    assert primary == [
        (A, T0, T0 + timedelta(hours=6), Reason.ROTATION),
        (C, T0 + timedelta(hours=6), T0 + timedelta(hours=12), Reason.COVER),
        (A, T0 + timedelta(hours=12), T0 + timedelta(days=1), Reason.ROTATION),
    ]
    secondary = [s for s in shifts if s.position == "secondary"]
    assert len(secondary) == 1 and secondary[0].user_id == B  # merged across the cuts


def test_everyone_excluded_is_a_gap_with_scheduled_user():
    spec = spec_of(participants=(A, B))
    ex = [Exclusion(u, T0, T0 + timedelta(days=1), id=u * 10) for u in (A, B)]
    got = oncall_at(spec, ex, [], T0 + timedelta(hours=3))
    assert [(s.user_id, s.reason, s.scheduled_user_id, s.exclusion_id) for s in got] == [
        (None, Reason.GAP, A, 10),
        (None, Reason.GAP, B, 20),
    ]


def test_single_person_excluded_is_gap_not_person():
    spec = spec_of(participants=(A,), positions=("primary",))
    ex = [Exclusion(A, T0, T0 + timedelta(days=1))]
    got = oncall_at(spec, ex, [], T0)
    assert got[0].user_id is None and got[0].reason is Reason.GAP


# --------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------


def test_override_by_position():
    spec = spec_of()
    ov = [
        Override(
            1,
            E,
            T0 + timedelta(hours=2),
            T0 + timedelta(hours=4),
            position="secondary",
            id=1,
        )
    ]
    shifts = rotation_shifts(spec, [], ov, T0, T0 + timedelta(days=1))
    sec = [(s.user_id, s.reason, s.override_id) for s in shifts if s.position == "secondary"]
    assert sec == [
        (B, Reason.ROTATION, None),
        (E, Reason.OVERRIDE, 1),
        (B, Reason.ROTATION, None),
    ]
    assert at_users(spec, T0 + timedelta(hours=3), [], ov) == {
        "primary": A,
        "secondary": E,
    }


def test_override_by_replaced_user_and_after_cover():
    spec = spec_of()
    # C covers B (excluded); an override replacing C applies to the cover slot.
    ex = [Exclusion(B, T0, T0 + timedelta(days=1))]
    ov = [Override(1, E, T0, T0 + timedelta(days=2), replaces_user_id=C, id=2)]
    got = oncall_at(spec, ex, ov, T0 + timedelta(hours=1))
    assert [(s.user_id, s.reason, s.scheduled_user_id) for s in got] == [
        (A, Reason.ROTATION, A),
        (E, Reason.OVERRIDE, B),
    ]
    # Next day C holds secondary by rotation, still replaced.
    assert at_users(spec, T0 + timedelta(days=1, hours=1), ex, ov) == {
        "primary": B,
        "secondary": E,
    }


def test_override_for_other_rotation_ignored_and_later_start_wins():
    spec = spec_of()
    ov = [
        Override(2, E, T0, T0 + timedelta(days=1), position="primary", id=1),
        Override(1, C, T0, T0 + timedelta(days=1), position="primary", id=2),
        Override(
            1,
            D,
            T0 + timedelta(hours=1),
            T0 + timedelta(hours=2),
            position="primary",
            id=3,
        ),
    ]
    assert at_users(spec, T0 + timedelta(minutes=30), [], ov)["primary"] == C
    assert at_users(spec, T0 + timedelta(minutes=90), [], ov)["primary"] == D


# --------------------------------------------------------------------------
# eras
# --------------------------------------------------------------------------


def test_era_change_mid_cycle_keeps_past_identical():
    old = Era(T0, T0, "days", 1, (A, B, C, D))
    change = T0 + timedelta(days=2, hours=5)  # in the middle of shift 2
    new = Era(change, change, "days", 1, (E, A))
    before = spec_of(eras=(old,))
    after = spec_of(eras=(old, new))
    past_before = rotation_shifts(before, [], [], T0, change)
    past_after = rotation_shifts(after, [], [], T0, change)
    assert past_before == past_after
    got = oncall_at(after, [], [], change)
    assert [(s.user_id, s.era_index, s.shift_index, s.start) for s in got] == [
        (E, 1, 0, change),
        (A, 1, 0, change),
    ]


def test_era_anchor_later_than_effective_from_leaves_no_one():
    old = Era(T0, T0, "days", 1, (A, B))
    eff = T0 + timedelta(days=1)
    new = Era(eff, eff + timedelta(hours=5), "days", 1, (C, D))
    spec = spec_of(eras=(old, new))
    assert oncall_at(spec, [], [], eff + timedelta(hours=1)) == []
    assert at_users(spec, eff + timedelta(hours=6)) == {"primary": C, "secondary": D}


def test_rotation_started_five_years_ago():
    anchor = datetime(2021, 3, 1, 9, tzinfo=BERLIN)
    spec = spec_of(anchor=anchor, tz="Europe/Berlin", unit="weeks")
    now = datetime(2026, 3, 2, 8, 59, tzinfo=BERLIN)
    got = oncall_at(spec, [], [], now)
    # Count weeks the slow way to check the arithmetic.
    i = 0
    while datetime(2021, 3, 1, 9, tzinfo=BERLIN) + timedelta(weeks=i + 1) <= now:
        i += 1
    assert got[0].shift_index == i
    assert got[0].user_id == (A, B, C, D)[i % 4]
    assert got[0].start == (anchor + timedelta(weeks=i)).replace(tzinfo=BERLIN).astimezone(UTC)
    assert got[0].end == datetime(2026, 3, 2, 9, tzinfo=BERLIN).astimezone(UTC)


def test_monthly_jan31_clamps():
    anchor = datetime(2026, 1, 31, 9, tzinfo=BERLIN)
    spec = spec_of(anchor=anchor, tz="Europe/Berlin", unit="months", positions=("primary",))
    shifts = rotation_shifts(spec, [], [], anchor, datetime(2026, 6, 1, tzinfo=UTC))
    starts = [s.start.astimezone(BERLIN).replace(tzinfo=None) for s in shifts]
    assert starts == [
        datetime(2026, 1, 31, 9),
        datetime(2026, 2, 28, 9),
        datetime(2026, 3, 31, 9),
        datetime(2026, 4, 30, 9),
        datetime(2026, 5, 31, 9),
    ]
    leap = spec_of(
        anchor=datetime(2028, 1, 31, 9, tzinfo=BERLIN),
        tz="Europe/Berlin",
        unit="months",
    )
    got = oncall_at(leap, [], [], datetime(2028, 3, 1, tzinfo=UTC))
    assert got[0].start.astimezone(BERLIN).replace(tzinfo=None) == datetime(2028, 2, 29, 9)


def test_two_month_shifts():
    anchor = datetime(2026, 1, 15, tzinfo=UTC)
    spec = spec_of(anchor=anchor, unit="months", length=2, positions=("p",))
    got = oncall_at(spec, [], [], datetime(2026, 6, 1, tzinfo=UTC))[0]
    assert (got.shift_index, got.start, got.end) == (
        2,
        utc(2026, 5, 15),
        utc(2026, 7, 15),
    )


# --------------------------------------------------------------------------
# restrictions (follow the sun)
# --------------------------------------------------------------------------


def test_emea_amer_follow_the_sun_has_no_team_gap():
    anchor_b = datetime(2026, 3, 23, 8, tzinfo=BERLIN)
    emea = spec_of(
        rid=1,
        tz="Europe/Berlin",
        anchor=anchor_b,
        unit="weeks",
        restrictions=(Window(time(8), time(20)),),
    )
    # AMER covers 20:00-08:00 Berlin time, expressed in Berlin wall-clock so the
    # windows stay complementary across both zones' DST changes.
    amer = spec_of(
        rid=2,
        participants=(11, 12, 13),
        tz="Europe/Berlin",
        anchor=anchor_b,
        unit="weeks",
        restrictions=(Window(time(20), time(8)),),
    )
    since, until = (
        datetime(2026, 3, 23, 8, tzinfo=BERLIN),
        datetime(2026, 4, 20, tzinfo=UTC),
    )
    assert coverage_gaps([emea, amer], [], [], since, until) == []
    # Berlin noon is EMEA, Berlin 23:00 is AMER.
    noon = team_oncall_at([emea, amer], [], [], datetime(2026, 3, 30, 12, tzinfo=BERLIN))
    assert [s.rotation_id for s in noon["primary"]] == [1]
    night = team_oncall_at([emea, amer], [], [], datetime(2026, 3, 30, 23, tzinfo=BERLIN))
    assert [s.rotation_id for s in night["primary"]] == [2]
    # Alone, EMEA leaves nights uncovered.
    gaps = coverage_gaps([emea], [], [], since, since + timedelta(days=2))
    assert (
        "primary",
        datetime(2026, 3, 23, 20, tzinfo=BERLIN),
        datetime(2026, 3, 24, 8, tzinfo=BERLIN),
    ) in [(p, s.astimezone(BERLIN), e.astimezone(BERLIN)) for p, s, e in gaps]


def test_amer_in_its_own_zone_shows_the_dst_mismatch_gap():
    # EMEA 08-20 Berlin, AMER 13:00-01:00 Chicago: complementary while both
    # zones are on standard time, but from 2026-03-08 (US DST) to 2026-03-29
    # (EU DST) AMER ends an hour early -> a daily 1h team gap.
    emea = spec_of(
        rid=1,
        tz="Europe/Berlin",
        anchor=datetime(2026, 1, 5, 8, tzinfo=BERLIN),
        restrictions=(Window(time(8), time(20)),),
    )
    amer = spec_of(
        rid=2,
        participants=(11, 12),
        tz="America/Chicago",
        anchor=datetime(2026, 1, 5, 1, tzinfo=CHICAGO),
        restrictions=(Window(time(13), time(1)),),
    )
    jan = datetime(2026, 1, 10, tzinfo=UTC)
    assert coverage_gaps([emea, amer], [], [], jan, jan + timedelta(days=20)) == []
    gaps = coverage_gaps([emea, amer], [], [], utc(2026, 3, 15), utc(2026, 3, 18), positions=["primary"])
    assert [(s, e) for _, s, e in gaps] == [(utc(2026, 3, d, 6), utc(2026, 3, d, 7)) for d in (15, 16, 17)]


def test_restricted_rotation_outside_window_yields_nothing():
    spec = spec_of(tz="Europe/Berlin", restrictions=(Window(time(8), time(20)),))
    assert oncall_at(spec, [], [], datetime(2026, 1, 6, 21, tzinfo=BERLIN)) == []
    got = oncall_at(spec, [], [], datetime(2026, 1, 6, 12, tzinfo=BERLIN))
    # The segment is the shift clipped to the window (handoff at 10:00 Berlin).
    assert got[0].start == datetime(2026, 1, 6, 10, tzinfo=BERLIN)
    assert got[0].end == datetime(2026, 1, 6, 20, tzinfo=BERLIN)


def test_weekday_windows():
    spec = spec_of(
        tz="America/Chicago",
        anchor=datetime(2026, 1, 5, 0, tzinfo=CHICAGO),
        unit="weeks",
        restrictions=(
            Window(time(9), time(17), weekday=0),
            Window(time(22), time(6), weekday=4),
        ),
    )
    since = datetime(2026, 1, 5, tzinfo=CHICAGO)
    shifts = [s for s in rotation_shifts(spec, [], [], since, since + timedelta(weeks=1)) if s.position_index == 0]
    local = [
        (
            s.start.astimezone(CHICAGO).replace(tzinfo=None),
            s.end.astimezone(CHICAGO).replace(tzinfo=None),
        )
        for s in shifts
    ]
    assert local == [
        (datetime(2026, 1, 5, 9), datetime(2026, 1, 5, 17)),  # Monday
        (
            datetime(2026, 1, 9, 22),
            datetime(2026, 1, 10, 6),
        ),  # Friday night into Saturday
    ]
    assert oncall_at(spec, [], [], datetime(2026, 1, 6, 10, tzinfo=CHICAGO)) == []


# --------------------------------------------------------------------------
# DST
# --------------------------------------------------------------------------

DST_CASES = [
    # zone, spring-forward date, fall-back date
    ("Europe/Berlin", datetime(2026, 3, 29), datetime(2026, 10, 25)),
    ("America/Chicago", datetime(2026, 3, 8), datetime(2026, 11, 1)),
    # Southern hemisphere: clocks go back in April, forward in October.
    ("Australia/Sydney", datetime(2026, 10, 4), datetime(2026, 4, 5)),
]


def _assert_tiles(shifts, since, until):
    for pos in {s.position for s in shifts}:
        segs = [s for s in shifts if s.position == pos]
        assert segs[0].start == since and segs[-1].end == until
        for prev, nxt in itertools.pairwise(segs):
            assert prev.end == nxt.start  # no gap, no overlap


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_CASES)
def test_daily_0900_stays_local_across_dst(zone, spring, fall):
    tz = ZoneInfo(zone)
    for day, expected_hours in ((spring, 23), (fall, 25)):
        anchor = (day - timedelta(days=3)).replace(hour=9, tzinfo=tz)
        spec = spec_of(anchor=anchor, tz=zone)
        since, until = anchor, (day + timedelta(days=3)).replace(hour=9, tzinfo=tz)
        shifts = rotation_shifts(spec, [], [], since, until)
        _assert_tiles(shifts, _u(since), _u(until))
        prim = [s for s in shifts if s.position == "primary"]
        assert all(s.start.astimezone(tz).hour == 9 and s.start.astimezone(tz).minute == 0 for s in prim)
        lengths = {s.start.astimezone(tz).date(): (s.end - s.start) / timedelta(hours=1) for s in prim}
        # The shift that starts the day before the change contains the change.
        assert lengths[(day - timedelta(days=1)).date()] == expected_hours
        assert sorted(set(lengths.values())) == sorted({24, expected_hours})


def _u(dt):
    return dt.astimezone(UTC)


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_CASES)
def test_daily_0230_on_spring_forward_is_deterministic(zone, spring, fall):
    tz = ZoneInfo(zone)
    anchor = (spring - timedelta(days=2)).replace(hour=2, minute=30, tzinfo=tz)
    spec = spec_of(anchor=anchor, tz=zone, positions=("primary",))
    since, until = _u(anchor), _u(anchor) + timedelta(days=5)
    shifts = rotation_shifts(spec, [], [], since, until)
    _assert_tiles(shifts, since, until)
    # The non-existent 02:30 resolves with fold=0, i.e. to the instant the
    # pre-transition offset gives, which is 03:30 local (forward of the gap).
    handoff = next(s.start for s in shifts if s.start.astimezone(tz).date() == spring.date())
    assert handoff == spring.replace(hour=2, minute=30, tzinfo=tz).astimezone(UTC)
    assert handoff.astimezone(tz).replace(tzinfo=None) == spring.replace(hour=3, minute=30)
    # Same answer from a different window and from oncall_at.
    again = rotation_shifts(spec, [], [], handoff - timedelta(minutes=1), handoff + timedelta(minutes=1))
    assert again[1].start == handoff
    assert oncall_at(spec, [], [], handoff)[0].start == handoff
    assert oncall_at(spec, [], [], handoff - timedelta(microseconds=1))[0].end == handoff


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_CASES)
def test_weekly_stays_on_weekday_and_time(zone, spring, fall):
    tz = ZoneInfo(zone)
    anchor = datetime(2026, 1, 7, 10, tzinfo=tz)  # Wednesday
    spec = spec_of(anchor=anchor, tz=zone, unit="weeks")
    until = datetime(2026, 12, 31, tzinfo=tz)
    shifts = [s for s in rotation_shifts(spec, [], [], anchor, until) if s.position_index == 0]
    _assert_tiles(shifts, _u(anchor), _u(until))
    for s in shifts[:-1]:
        loc = s.start.astimezone(tz)
        assert (loc.weekday(), loc.hour, loc.minute) == (2, 10, 0)
    lengths = {(s.end - s.start) / timedelta(hours=1) for s in shifts[:-1]}
    assert lengths == {167, 168, 169}


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_CASES)
def test_hourly_stays_on_the_hour(zone, spring, fall):
    tz = ZoneInfo(zone)
    for day in (spring, fall):
        anchor = (day - timedelta(days=1)).replace(tzinfo=tz)
        spec = spec_of(anchor=anchor, tz=zone, unit="hours", participants=(A, B, C))
        since, until = _u(anchor), _u(anchor) + timedelta(days=3)
        shifts = rotation_shifts(spec, [], [], since, until)
        _assert_tiles(shifts, since, until)
        assert all(s.end - s.start == timedelta(hours=1) for s in shifts)
        assert all(s.start.astimezone(tz).minute == 0 for s in shifts)
        assert [s.user_id for s in shifts if s.position_index == 0][:4] == [A, B, C, A]


def test_ambiguous_fall_back_handoff_uses_first_occurrence():
    # 01:30 happens twice in Chicago on 2026-11-01; fold=0 picks CDT.
    anchor = datetime(2026, 10, 30, 1, 30, tzinfo=CHICAGO)
    spec = spec_of(anchor=anchor, tz="America/Chicago", positions=("p",))
    got = oncall_at(spec, [], [], utc(2026, 11, 1, 12))[0]
    assert got.start == utc(2026, 11, 1, 6, 30)


# --------------------------------------------------------------------------
# windows, handoffs, team helpers
# --------------------------------------------------------------------------


def test_window_independence_and_clipping():
    spec = spec_of(tz="Europe/Berlin", anchor=datetime(2026, 3, 20, 9, tzinfo=BERLIN))
    ex = [Exclusion(B, utc(2026, 3, 27, 3), utc(2026, 3, 29, 3), id=1)]
    ov = [Override(1, E, utc(2026, 3, 28, 1), utc(2026, 3, 28, 2), position="primary", id=4)]
    since, until = utc(2026, 3, 25), utc(2026, 4, 2)
    full = rotation_shifts(spec, ex, ov, since, until)
    cut = utc(2026, 3, 28, 1, 30)
    left = rotation_shifts(spec, ex, ov, since, cut)
    right = rotation_shifts(spec, ex, ov, cut, until)
    clipped = [s for s in full if s.start < cut]
    assert [s.start for s in left] == [s.start for s in clipped]
    assert [min(s.end, cut) for s in clipped] == [s.end for s in left]
    assert len(left) + len(right) == len(full) + len([s for s in full if s.start < cut < s.end])


def test_handoffs_rotation_cover_and_override():
    spec = spec_of()
    ex = [Exclusion(A, T0 + timedelta(hours=6), T0 + timedelta(hours=12))]
    ov = [Override(1, E, T0 + timedelta(hours=14), T0 + timedelta(hours=15), replaces_user_id=B)]
    hs = handoffs(spec, ex, ov, T0, T0 + timedelta(days=1))
    got = [(h.position, h.at - T0, h.outgoing_user_id, h.incoming_user_id) for h in hs]
    assert got == [
        ("primary", timedelta(hours=6), A, C),
        ("primary", timedelta(hours=12), C, A),
        ("secondary", timedelta(hours=14), B, E),
        ("secondary", timedelta(hours=15), E, B),
        ("primary", timedelta(days=1), A, B),
        ("secondary", timedelta(days=1), B, C),
    ]
    # A handoff exactly at `since` is not reported, one at `until` is.
    assert handoffs(spec, [], [], T0 + timedelta(days=1), T0 + timedelta(days=2))[0].at == T0 + timedelta(days=2)


def test_single_person_rotation_has_no_handoffs():
    spec = spec_of(participants=(A,), positions=("primary",))
    assert handoffs(spec, [], [], T0, T0 + timedelta(days=10)) == []


def test_handoff_to_nobody_at_restriction_end():
    spec = spec_of(
        positions=("primary",),
        restrictions=(Window(time(10), time(12)),),
        anchor=utc(2026, 1, 5),
    )
    hs = handoffs(spec, [], [], utc(2026, 1, 5), utc(2026, 1, 6))
    assert [(h.at.hour, h.outgoing_user_id, h.incoming_user_id) for h in hs] == [
        (10, None, A),
        (12, A, None),
    ]


def test_team_shifts_and_team_oncall_merge_rotations():
    r1 = spec_of(rid=1)
    r2 = spec_of(rid=2, participants=(E,), positions=("primary",))
    t = T0 + timedelta(hours=1)
    team = team_oncall_at([r1, r2], [], [], t)
    assert {p: [s.user_id for s in v] for p, v in team.items()} == {
        "primary": [A, E],
        "secondary": [B],
    }
    shifts = team_shifts([r1, r2], [], [], T0, T0 + timedelta(days=1))
    assert [(s.rotation_id, s.position) for s in shifts] == [
        (1, "primary"),
        (2, "primary"),
        (1, "secondary"),
    ]


def test_coverage_gaps_from_exclusions():
    spec = spec_of(participants=(A, B), positions=("primary",))
    ex = [
        Exclusion(A, T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        Exclusion(B, T0, T0 + timedelta(hours=3)),
    ]
    gaps = coverage_gaps([spec], ex, [], T0, T0 + timedelta(days=1), positions=("primary", "tertiary"))
    assert gaps == [
        ("primary", T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        ("tertiary", T0, T0 + timedelta(days=1)),
    ]


def test_naive_datetimes_rejected():
    with pytest.raises(ValueError, match="naive"):
        oncall_at(spec_of(), [], [], datetime(2026, 1, 1))


# --------------------------------------------------------------------------
# implementation details that must stay invisible
# --------------------------------------------------------------------------


def test_returned_shifts_are_genuine_frozen_shifts():
    import dataclasses
    import pickle

    from rotations.schedule import Shift

    got = oncall_at(spec_of(), [], [], T0)[0]
    assert type(got) is Shift
    same = Shift(1, "primary", 0, A, T0, T0 + timedelta(days=1), Reason.ROTATION, A, 0, 0)
    assert got == same and hash(got) == hash(same)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.user_id = B  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(got)) == got
    assert dataclasses.replace(got, user_id=B).user_id == B


def test_oncall_memo_does_not_leak_between_calls():
    spec = spec_of()
    t = T0 + timedelta(hours=5)
    ex = [Exclusion(A, T0, T0 + timedelta(days=1))]
    ov = [Override(1, E, T0, T0 + timedelta(hours=6), position="secondary")]
    assert at_users(spec, t) == {"primary": A, "secondary": B}
    assert at_users(spec, t, ex) == {"primary": C, "secondary": B}
    assert at_users(spec, t, ex, ov) == {"primary": C, "secondary": E}
    assert at_users(spec, t) == {"primary": A, "secondary": B}
    # Equal spec rebuilt as a new object, and a spec holding lists (unhashable).
    assert at_users(spec_of(), t + timedelta(days=1)) == {"primary": B, "secondary": C}
    listy = RotationSpec(1, 10, "UTC", ["primary"], [Era(T0, T0, "days", 1, [A, B])])
    assert at_users(listy, t + timedelta(days=1)) == {"primary": B}
    assert oncall_at(spec, (x for x in ex), iter(ov), t)[0].user_id == C


def test_fast_constructors_build_the_same_frozen_records():
    import pickle

    from rotations.schedule import exclusion_make, override_make

    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    end = start + timedelta(hours=4)
    fast = exclusion_make(7, start, end, 3, "vacation")
    assert type(fast) is Exclusion
    assert fast == Exclusion(7, start, end, id=3, reason="vacation")
    assert hash(fast) == hash(Exclusion(7, start, end, id=3, reason="vacation"))
    assert pickle.loads(pickle.dumps(fast)) == fast
    with pytest.raises(AttributeError):
        fast.user_id = 8  # frozen like the dataclass

    taken = override_make(1, 9, start, end, "primary", None, 5)
    assert type(taken) is Override
    assert taken == Override(1, 9, start, end, position="primary", id=5)
    assert override_make(1, 9, start, end, None, 7) == Override(1, 9, start, end, replaces_user_id=7)
