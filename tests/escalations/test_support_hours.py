"""Support hours and urgency in the pure engine: no database, `now` passed in."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalations import engine
from escalations.intake.parsers import urgency_of
from escalations.support_hours import SupportHours, support_hours_contains, support_hours_next_start

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = SupportHours("Europe/Berlin", frozenset({0, 1, 2, 3, 4}), 9 * 60, 17 * 60)
STEP = engine.StepSpec(delay=timedelta(minutes=10), targets=(engine.TargetSpec(kind="user", user_id=7),))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def targets(_step: int) -> frozenset[int]:
    return frozenset({7})


# --------------------------------------------------------------------------- next start across DST


def test_next_start_over_the_spring_forward_weekend():
    # Friday evening before Europe's clocks go forward (Sunday 31 March 2024): Monday 09:00 is CEST.
    friday_evening = local(2024, 3, 29, 20, 0)
    assert support_hours_next_start(OFFICE, friday_evening) == datetime(2024, 4, 1, 7, 0, tzinfo=UTC)
    # The week before it was 08:00 UTC: the window follows the wall clock, not a fixed offset.
    assert support_hours_next_start(OFFICE, local(2024, 3, 22, 20, 0)) == datetime(2024, 3, 25, 8, 0, tzinfo=UTC)


def test_next_start_over_the_fall_back_weekend_and_inside_hours():
    assert support_hours_next_start(OFFICE, local(2024, 10, 25, 18, 0)) == datetime(2024, 10, 28, 8, 0, tzinfo=UTC)
    inside = local(2024, 10, 28, 12, 0)
    assert support_hours_next_start(OFFICE, inside) == inside
    assert not support_hours_contains(OFFICE, local(2024, 10, 28, 17, 0))  # the end is exclusive


def test_a_window_through_the_night_of_a_dst_change_starts_after_the_jump():
    # 02:30 does not exist on 31 March 2024 in Berlin: the window begins at 03:30 CEST (PEP 495).
    nightly = SupportHours("Europe/Berlin", frozenset({6}), 2 * 60 + 30, 4 * 60)
    start = support_hours_next_start(nightly, local(2024, 3, 31, 0, 0))
    assert start == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert support_hours_contains(nightly, start)


ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])
HOURS = st.builds(
    lambda zone, days, a, b: SupportHours(zone, frozenset(days), min(a, b), max(a, b) + 1),
    ZONES,
    st.sets(st.integers(0, 6), min_size=1),
    st.integers(0, 24 * 60 - 1),
    st.integers(0, 24 * 60 - 1),
)
# Moments clustered around the 2024 DST changes of both hemispheres.
MOMENTS = st.sampled_from(
    [datetime(2024, 3, 28, tzinfo=UTC), datetime(2024, 4, 4, tzinfo=UTC), datetime(2024, 10, 25, tzinfo=UTC)]
).flatmap(lambda base: st.integers(0, 5 * 24 * 60).map(lambda m: base + timedelta(minutes=m)))


@settings(max_examples=300, deadline=None)
@given(HOURS, MOMENTS)
def test_next_start_is_the_first_supported_moment(hours, at):
    start = support_hours_next_start(hours, at)
    assert start >= at
    assert start - at <= timedelta(days=8)
    assert support_hours_contains(hours, start)
    # Nothing in between is supported (checked every 15 minutes, and the minute before the start).
    probe = at
    while probe < start - timedelta(minutes=1):
        assert not support_hours_contains(hours, probe)
        probe += timedelta(minutes=15)
    if start > at:
        assert not support_hours_contains(hours, start - timedelta(minutes=1))
        # A start on the wall clock it names, unless that minute fell into a DST gap.
        wall = start.astimezone(hours.zone)
        named = datetime.combine(wall.date(), time(hours.start_minute // 60, hours.start_minute % 60))
        in_gap = named.replace(tzinfo=hours.zone).astimezone(UTC).astimezone(hours.zone).replace(tzinfo=None) != named
        assert wall.replace(tzinfo=None) == named or in_gap


def test_support_hours_json_is_validated():
    assert SupportHours.from_json({}) is None
    assert SupportHours.from_json(OFFICE.to_json()) == OFFICE
    for bad in (
        {"time_zone": "Mars/Olympus", "days": [0], "start": "09:00", "end": "17:00"},
        {"time_zone": "UTC", "days": [], "start": "09:00", "end": "17:00"},
        {"time_zone": "UTC", "days": [7], "start": "09:00", "end": "17:00"},
        {"time_zone": "UTC", "days": [0], "start": "17:00", "end": "09:00"},
        {"time_zone": "UTC", "days": [0], "start": "9am", "end": "17:00"},
        {"time_zone": "UTC", "days": [0], "start": "09:00", "end": "24:30"},
        {"time_zone": "UTC", "days": [0], "start": "09:00", "end": "17:00", "extra": 1},
        ["UTC"],
    ):
        with pytest.raises(ValueError):
            SupportHours.from_json(bad)


# --------------------------------------------------------------------------- severity -> urgency


def test_urgency_of_maps_severity_and_honours_the_rule_and_an_explicit_urgency():
    assert [urgency_of(rule="severity", severity=s) for s in ("critical", "error", "warning", "info")] == [
        "high",
        "high",
        "low",
        "low",
    ]
    assert urgency_of(rule="severity", severity="warning", urgency="high") == "high"
    assert urgency_of(rule="always_high", severity="info", urgency="low") == "high"
    assert urgency_of(rule="always_low", severity="critical") == "low"


# --------------------------------------------------------------------------- the engine


def test_low_urgency_outside_support_hours_waits_then_starts_at_step_one():
    policy = engine.PolicySpec(steps=(STEP,), repeat=0, support_hours=OFFICE)
    friday_evening = local(2024, 3, 29, 20, 0)
    state = engine.trigger(policy, friday_evening, "low")
    monday = datetime(2024, 4, 1, 7, 0, tzinfo=UTC)
    assert (state.next_action_at, state.deferred_until) == (monday, monday)
    assert engine.advance(policy, state, local(2024, 3, 31, 12, 0), targets) == engine.Decision(state)
    decision = engine.advance(policy, state, monday, targets)
    [notify] = decision.actions
    assert isinstance(notify, engine.NotifyStep) and (notify.step, notify.user_ids) == (0, (7,))
    assert "support hours" in notify.explain
    assert decision.state.deferred_until is None
    # High urgency ignores support hours.
    assert engine.trigger(policy, friday_evening, "high").next_action_at == friday_evening


def test_unacknowledged_low_urgency_is_raised_and_the_next_step_keeps_its_time():
    policy = engine.PolicySpec(
        steps=(STEP, STEP), repeat=0, raise_urgency_after=timedelta(minutes=4), auto_resolve_after=timedelta(hours=5)
    )
    t0 = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    state = engine.advance(policy, engine.trigger(policy, t0, "low"), t0, targets).state
    # Step 2 is due at +10 min, the raise at +4: wake for the raise, keep step 2's time aside.
    assert (state.next_action_at, state.deferred_until) == (t0 + timedelta(minutes=4), t0 + timedelta(minutes=10))
    raised = engine.advance(policy, state, t0 + timedelta(minutes=4), targets)
    [action] = raised.actions
    assert isinstance(action, engine.UrgencyRaised) and action.repage
    assert raised.state.urgency is engine.Urgency.HIGH
    assert raised.state.next_action_at == t0 + timedelta(minutes=10)
    step2 = engine.advance(policy, raised.state, t0 + timedelta(minutes=10), targets)
    assert [type(a) for a in step2.actions] == [engine.NotifyStep] and step2.actions[0].step == 1


def test_raise_while_waiting_for_support_hours_pages_at_once_and_ack_stops_the_raise():
    policy = engine.PolicySpec(steps=(STEP,), repeat=0, support_hours=OFFICE, raise_urgency_after=timedelta(hours=1))
    friday_evening = local(2024, 3, 29, 20, 0)
    state = engine.trigger(policy, friday_evening, "low")
    assert state.next_action_at == friday_evening + timedelta(hours=1)
    decision = engine.advance(policy, state, friday_evening + timedelta(hours=1), targets)
    assert [type(a) for a in decision.actions] == [engine.UrgencyRaised, engine.NotifyStep]
    assert not decision.actions[0].repage
    acked = engine.acknowledge(policy, engine.trigger(policy, friday_evening, "low"), friday_evening)
    assert (acked.next_action_at, acked.deferred_until) == (None, None)


def test_a_new_high_urgency_alert_starts_a_waiting_cycle_now():
    policy = engine.PolicySpec(steps=(STEP,), repeat=0, support_hours=OFFICE)
    friday_evening = local(2024, 3, 29, 20, 0)
    state = engine.trigger(policy, friday_evening, "low")
    later = friday_evening + timedelta(minutes=3)
    raised = engine.urgency_raise(policy, state, later)
    assert (raised.urgency, raised.next_action_at, raised.deferred_until) == (engine.Urgency.HIGH, later, None)
    assert engine.urgency_raise(policy, raised, later) == raised  # never twice, never lowered


def test_policy_json_round_trips_the_urgency_settings():
    policy = engine.PolicySpec(steps=(STEP,), repeat=0, support_hours=OFFICE, raise_urgency_after=timedelta(hours=1))
    assert engine.PolicySpec.from_json(policy.to_json()) == policy
