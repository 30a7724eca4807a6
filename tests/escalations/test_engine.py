"""Scenario tests for the pure escalation engine. ``now`` is always passed in."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from escalations.engine import (
    EMPTY_RETRY_INTERVAL,
    AutoResolved,
    Decision,
    EngineState,
    NotifyStep,
    PlannedPage,
    PolicyExhausted,
    PolicySpec,
    Retriggered,
    RuleSpec,
    SkipReason,
    Status,
    StepSkipped,
    StepSpec,
    TargetKind,
    TargetSpec,
    TriggerReason,
    acknowledge,
    advance,
    escalate_now,
    next_due,
    notification_plan,
    resolve,
    retrigger,
    snooze,
    trigger,
)

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def policy(*delays_min: float, repeat: int | None = 0, **kw) -> PolicySpec:
    steps = tuple(
        StepSpec(delay=timedelta(minutes=d), targets=(TargetSpec(TargetKind.POSITION, position=f"tier{i}"),))
        for i, d in enumerate(delays_min)
    )
    return PolicySpec(steps=steps, repeat=repeat, **kw)


def roster(mapping: dict[int, set[int]]) -> Callable[[int], frozenset[int]]:
    return lambda step: frozenset(mapping.get(step, set()))


EVERYONE = roster({0: {1}, 1: {2}, 2: {3}, 3: {4}})


def notifies(decision: Decision) -> list[tuple[int, int, int]]:
    return [(a.cycle, a.step, a.loop) for a in decision.actions if isinstance(a, NotifyStep)]


def run(p: PolicySpec, state: EngineState, now: datetime, targets=EVERYONE) -> Decision:
    decision = advance(p, state, now, targets)
    # Every call is deterministic: re-running a rolled-back transaction rebuilds the same pages.
    assert advance(p, state, now, targets) == decision
    return decision


# --------------------------------------------------------------------------- timed escalation


def test_two_step_timed_escalation() -> None:
    p = policy(5, 10)
    s = trigger(p, T0)
    assert s.status is Status.TRIGGERED and s.step == -1 and s.next_action_at == T0

    d = run(p, s, T0)
    assert notifies(d) == [(0, 0, 0)]
    (n,) = d.actions
    assert isinstance(n, NotifyStep) and n.user_ids == (1,) and n.at == T0
    assert "incident triggered" in n.explain
    assert d.state.next_action_at == at(5)

    # Nothing happens before the delay elapses.
    assert run(p, d.state, at(4.99)) == Decision(d.state)

    d = run(p, d.state, at(5))
    assert notifies(d) == [(0, 1, 0)]
    assert d.state.next_action_at == at(15)

    d = run(p, d.state, at(15))
    assert [type(a) for a in d.actions] == [PolicyExhausted]
    assert d.state.exhausted and d.state.next_action_at is None
    assert d.state.status is Status.TRIGGERED
    assert run(p, d.state, at(500)) == Decision(d.state)


def test_several_users_on_one_step_are_paged_together_sorted() -> None:
    p = policy(5)
    d = run(p, trigger(p, T0), T0, roster({0: {9, 3, 7}}))
    (n,) = d.actions
    assert isinstance(n, NotifyStep) and n.user_ids == (3, 7, 9)


def test_advance_twice_with_same_now_is_idempotent() -> None:
    p = policy(5, 5)
    first = run(p, trigger(p, T0), T0)
    second = run(p, first.state, T0)
    assert second.actions == () and second.state == first.state


def test_not_due_resolved_or_unscheduled_does_nothing() -> None:
    p = policy(5)
    s = trigger(p, T0)
    assert run(p, s, T0 - MIN) == Decision(s)
    idle = EngineState(status=Status.TRIGGERED)
    assert run(p, idle, T0) == Decision(idle)
    gone = resolve(s, T0)
    assert run(p, gone, at(60)) == Decision(gone)
    assert next_due(gone) is None and next_due(s) == T0


def test_outage_yields_one_page_and_next_one_full_delay_after_it_ran() -> None:
    p = policy(5, 5, 5, 5, repeat=3)
    d = run(p, trigger(p, T0), T0)
    # Sweep down for 20 minutes: steps 1..3 were all "missed".
    d = run(p, d.state, at(20))
    assert notifies(d) == [(0, 1, 0)]
    assert d.state.next_action_at == at(25)
    assert "late" in d.actions[0].explain
    d = run(p, d.state, at(25))
    assert notifies(d) == [(0, 2, 0)]


# --------------------------------------------------------------------------- repeat


def _drive(p: PolicySpec, until_min: int, targets=EVERYONE) -> tuple[list[tuple[int, int, int]], Decision]:
    s, keys, d = trigger(p, T0), [], None
    for minute in range(until_min + 1):
        d = run(p, s, at(minute), targets)
        keys += notifies(d)
        s = d.state
    assert d is not None
    return keys, d


def test_repeat_loops_then_exhausts() -> None:
    p = policy(5, 5, repeat=2)
    keys, last = _drive(p, 200)
    assert keys == [(0, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1), (0, 0, 2), (0, 1, 2)]
    assert last.state.exhausted and last.state.next_action_at is None


def test_repeat_exhaustion_action_is_emitted_once() -> None:
    p = policy(5, 5, repeat=1)
    s, exhausted = trigger(p, T0), []
    for minute in range(100):
        d = run(p, s, at(minute))
        exhausted += [a for a in d.actions if isinstance(a, PolicyExhausted)]
        s = d.state
    assert exhausted == [PolicyExhausted(cycle=0, loop=1, explain=exhausted[0].explain)]


def test_unlimited_repeat_keeps_looping() -> None:
    p = policy(1, 1, repeat=None)
    keys, last = _drive(p, 1000)
    assert len(keys) == 1001
    assert keys[-1] == (0, 0, 500)
    assert not last.state.exhausted


def test_unlimited_repeat_with_zero_length_loop_is_rejected() -> None:
    with pytest.raises(ValueError):
        policy(0, 0, repeat=None)


# --------------------------------------------------------------------------- acknowledgement


def test_acknowledgement_stops_escalation() -> None:
    p = policy(5, 5, repeat=None)
    d = run(p, trigger(p, T0), T0)
    acked = acknowledge(p, d.state, at(2))
    assert acked.status is Status.ACKNOWLEDGED and acked.next_action_at is None
    for minute in range(0, 24 * 60, 7):
        assert run(p, acked, at(minute)).actions == ()
    # Idempotent: a second click does not restart anything.
    assert acknowledge(p, acked, at(3)) == acked


def test_ack_timeout_retriggers_new_cycle_from_step_zero() -> None:
    p = policy(5, 5, repeat=0, ack_timeout=timedelta(minutes=30))
    d = run(p, trigger(p, T0), T0)
    d = run(p, d.state, at(5))
    assert notifies(d) == [(0, 1, 0)]
    acked = acknowledge(p, d.state, at(6))
    assert acked.next_action_at == at(36)
    assert run(p, acked, at(35)).actions == ()

    d = run(p, acked, at(36))
    retrig, notify = d.actions
    assert isinstance(retrig, Retriggered) and retrig.cycle == 1
    assert retrig.reason is TriggerReason.ACK_TIMEOUT
    assert "ack" in retrig.explain
    assert notifies(d) == [(1, 0, 0)]
    assert isinstance(notify, NotifyStep) and "re-triggered" in notify.explain
    assert d.state.status is Status.TRIGGERED and d.state.triggered_at == at(36)
    assert d.state.acknowledged_at is None and d.state.next_action_at == at(41)


def test_ack_timeout_after_outage_runs_at_now() -> None:
    p = policy(5, repeat=0, ack_timeout=timedelta(minutes=30))
    acked = acknowledge(p, run(p, trigger(p, T0), T0).state, at(1))
    d = run(p, acked, at(90))
    assert notifies(d) == [(1, 0, 0)]
    assert d.state.next_action_at == at(95)


def test_manual_escalate_of_acknowledged_incident_pages_next_step() -> None:
    p = policy(5, 5, 5)
    d = run(p, trigger(p, T0), T0)
    acked = acknowledge(p, d.state, at(1))
    esc = escalate_now(p, acked, at(2))
    assert esc.status is Status.TRIGGERED and esc.next_action_at == at(2) and esc.acknowledged_at is None
    d = run(p, esc, at(2))
    assert notifies(d) == [(0, 1, 0)]
    assert d.state.next_action_at == at(7)


def test_manual_escalate_past_the_end_grants_one_extra_loop() -> None:
    p = policy(5, 5, repeat=0)
    keys, last = _drive(p, 30)
    assert keys == [(0, 0, 0), (0, 1, 0)] and last.state.exhausted

    esc = escalate_now(p, last.state, at(31))
    assert not esc.exhausted
    d = run(p, esc, at(31))
    assert notifies(d) == [(0, 0, 1)]
    d = run(p, d.state, at(36))
    assert notifies(d) == [(0, 1, 1)]
    d = run(p, d.state, at(41))
    assert [type(a) for a in d.actions] == [PolicyExhausted]


def test_manual_escalate_at_last_step_before_exhaustion_wraps() -> None:
    p = policy(5, 5, repeat=0)
    d = run(p, trigger(p, T0), T0)
    d = run(p, d.state, at(5))  # last step of the only loop, not yet exhausted
    d = run(p, escalate_now(p, d.state, at(6)), at(6))
    assert notifies(d) == [(0, 0, 1)]


def test_escalate_and_retrigger_ignore_resolved() -> None:
    p = policy(5)
    gone = resolve(trigger(p, T0), T0)
    assert escalate_now(p, gone, at(1)) == gone
    assert retrigger(p, gone, at(1)) == gone
    assert acknowledge(p, gone, at(1)) == gone
    assert resolve(gone, at(2)) == gone


def test_retrigger_starts_new_cycle_only_when_not_escalating() -> None:
    p = policy(5, 5)
    d = run(p, trigger(p, T0), T0)
    assert retrigger(p, d.state, at(1)) == d.state  # duplicate alert while escalating

    acked = acknowledge(p, d.state, at(1))
    re = retrigger(p, acked, at(2))
    assert (re.status, re.cycle, re.step, re.loop, re.next_action_at) == (Status.TRIGGERED, 1, -1, 0, at(2))
    assert notifies(run(p, re, at(2))) == [(1, 0, 0)]


# --------------------------------------------------------------------------- empty steps


def test_empty_step_without_skip_waits_its_delay() -> None:
    p = policy(5, 10, 5)
    targets = roster({0: {1}, 2: {3}})
    d = run(p, trigger(p, T0), T0, targets)
    d = run(p, d.state, at(5), targets)
    (skipped,) = d.actions
    assert isinstance(skipped, StepSkipped) and skipped.reason is SkipReason.NOBODY_ON_CALL
    assert (skipped.step, skipped.loop) == (1, 0) and "nobody" in skipped.explain.lower()
    assert d.state.step == 1 and d.state.next_action_at == at(15)
    d = run(p, d.state, at(15), targets)
    assert notifies(d) == [(0, 2, 0)]


def test_empty_step_with_skip_pages_next_step_immediately_and_carries_delay() -> None:
    p = policy(5, 10, 5, 5, skip_empty_steps=True)
    targets = roster({0: {1}, 2: {3}, 3: {4}})
    d = run(p, trigger(p, T0), T0, targets)
    d = run(p, d.state, at(5), targets)
    skipped, notify = d.actions
    assert isinstance(skipped, StepSkipped) and skipped.reason is SkipReason.EMPTY_STEP_SKIPPED
    assert (skipped.step, notify.step) == (1, 2)
    # Step 3 keeps its nominal time (5 + 10 + 5 = 20): the skipped 10m is carried over.
    assert d.state.next_action_at == at(20)
    assert "10m" in notify.explain


def test_skip_cannot_turn_a_zero_delay_step_into_a_paging_storm() -> None:
    # "Page primary, then immediately secondary, then repeat every 15 minutes";
    # with nobody on secondary, primary must still only be paged every 15 minutes.
    p = policy(0, 15, repeat=None, skip_empty_steps=True)
    keys, _ = _drive(p, 60, roster({0: {1}}))
    assert keys == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 0, 4)]


def test_all_steps_empty_with_skip_retries_until_roster_filled() -> None:
    p = policy(5, 5, repeat=0, skip_empty_steps=True)
    s = trigger(p, T0)
    d = run(p, s, T0, roster({}))
    assert [type(a) for a in d.actions] == [StepSkipped, StepSkipped]
    assert all(a.reason is SkipReason.NOBODY_REACHABLE for a in d.actions)
    assert "retrying" in d.actions[0].explain
    # Nothing was consumed: still before step 0, loop 0.
    assert (d.state.step, d.state.loop, d.state.exhausted) == (-1, 0, True)
    assert d.state.next_action_at == T0 + EMPTY_RETRY_INTERVAL

    # Retries do not flood the timeline.
    d = run(p, d.state, T0 + EMPTY_RETRY_INTERVAL, roster({}))
    assert d.actions == () and d.state.next_action_at == T0 + 2 * EMPTY_RETRY_INTERVAL

    # Someone comes on call for step 1: paged at the next retry, with step 0's delay carried.
    d = run(p, d.state, T0 + 2 * EMPTY_RETRY_INTERVAL, roster({1: {8}}))
    assert notifies(d) == [(0, 1, 0)]
    assert d.state.next_action_at == T0 + 2 * EMPTY_RETRY_INTERVAL + timedelta(minutes=10)
    assert not d.state.exhausted


def test_escalate_during_empty_retry_does_not_duplicate_skip_records() -> None:
    p = policy(5, 5, repeat=0, skip_empty_steps=True)
    d = run(p, trigger(p, T0), T0, roster({}))
    esc = escalate_now(p, d.state, at(0.5))
    assert (esc.step, esc.loop, esc.exhausted) == (-1, 0, True)
    assert run(p, esc, at(0.5), roster({})).actions == ()
    assert notifies(run(p, esc, at(0.5), roster({0: {5}}))) == [(0, 0, 0)]


def test_acknowledge_while_snoozed_keeps_the_snooze() -> None:
    p = policy(5, ack_timeout=timedelta(minutes=10))
    s = snooze(p, trigger(p, T0), at(1), until=at(60))
    assert acknowledge(p, s, at(2)) == s


def test_trailing_empty_steps_with_skip_exhaust_after_someone_was_paged() -> None:
    p = policy(5, 5, 5, repeat=0, skip_empty_steps=True)
    targets = roster({0: {1}})
    d = run(p, run(p, trigger(p, T0), T0, targets).state, at(5), targets)
    assert [type(a) for a in d.actions] == [StepSkipped, StepSkipped, PolicyExhausted]
    assert d.state.exhausted and d.state.next_action_at is None


# --------------------------------------------------------------------------- snooze / auto-resolve


def test_snooze_retriggers_when_it_ends() -> None:
    p = policy(5, 5, ack_timeout=timedelta(minutes=10))
    d = run(p, trigger(p, T0), T0)
    s = snooze(p, d.state, at(1), until=at(61))
    assert s.status is Status.ACKNOWLEDGED and s.next_action_at == at(61)  # snooze overrides ack timeout
    assert run(p, s, at(30)).actions == ()
    d = run(p, s, at(61))
    retrig = d.actions[0]
    assert isinstance(retrig, Retriggered) and retrig.reason is TriggerReason.SNOOZE_ENDED
    assert str(retrig.reason) == "snooze ended"
    assert notifies(d) == [(1, 0, 0)]
    assert d.state.snoozed_until is None


def test_snooze_rejects_past_end_and_ignores_resolved() -> None:
    p = policy(5)
    s = trigger(p, T0)
    with pytest.raises(ValueError):
        snooze(p, s, at(1), until=at(1))
    gone = resolve(s, T0)
    assert snooze(p, gone, at(1), until=at(9)) == gone


def test_auto_resolve_of_idle_triggered_incident() -> None:
    p = policy(5, repeat=0, auto_resolve_after=timedelta(hours=4))
    _, last = _drive(p, 30)
    assert last.state.exhausted and last.state.next_action_at == at(240)  # idle, but auto-resolve pending
    d = run(p, last.state, at(240))
    (resolved,) = d.actions
    assert isinstance(resolved, AutoResolved) and resolved.at == at(240) and "4h" in resolved.explain
    assert d.state.status is Status.RESOLVED and d.state.next_action_at is None


def test_auto_resolve_of_acknowledged_incident_and_earliest_deadline() -> None:
    p = policy(5, ack_timeout=timedelta(hours=8), auto_resolve_after=timedelta(hours=2))
    acked = acknowledge(p, run(p, trigger(p, T0), T0).state, at(1))
    assert acked.next_action_at == at(120)  # earlier than the ack timeout
    d = run(p, acked, at(120))
    assert [type(a) for a in d.actions] == [AutoResolved]


def test_auto_resolve_wins_over_other_overdue_work_after_outage() -> None:
    p = policy(5, 5, repeat=None, auto_resolve_after=timedelta(minutes=30))
    d = run(p, trigger(p, T0), T0)
    assert d.state.next_action_at == at(5)
    d = run(p, d.state, at(45))
    assert [type(a) for a in d.actions] == [AutoResolved]


def test_next_action_is_capped_by_auto_resolve() -> None:
    p = policy(60, repeat=0, auto_resolve_after=timedelta(minutes=30))
    d = run(p, trigger(p, T0), T0)
    assert d.state.next_action_at == at(30)


def test_ack_timeout_resets_auto_resolve_clock() -> None:
    p = policy(5, repeat=0, ack_timeout=timedelta(minutes=30), auto_resolve_after=timedelta(minutes=60))
    acked = acknowledge(p, run(p, trigger(p, T0), T0).state, at(1))
    d = run(p, acked, at(31))
    assert isinstance(d.actions[0], Retriggered)
    assert d.state.triggered_at == at(31)


# --------------------------------------------------------------------------- misc


def test_policy_json_round_trip() -> None:
    p = PolicySpec(
        steps=(
            StepSpec(timedelta(minutes=5), (TargetSpec(TargetKind.POSITION, position="primary"),)),
            StepSpec(
                timedelta(seconds=90.5),
                (TargetSpec(TargetKind.USER, user_id=42), TargetSpec(TargetKind.MANAGERS)),
            ),
            StepSpec(timedelta(0), (TargetSpec(TargetKind.TEAM),)),
        ),
        repeat=None,
        ack_timeout=timedelta(minutes=30),
        auto_resolve_after=None,
        skip_empty_steps=True,
    )
    data = json.loads(json.dumps(p.to_json()))
    assert data["steps"][0]["delay"] == 300 and data["ack_timeout"] == 1800
    assert PolicySpec.from_json(data) == p


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        PolicySpec(steps=(), repeat=-1)
    with pytest.raises(ValueError):
        StepSpec(delay=-MIN, targets=())
    with pytest.raises(ValueError):
        TargetSpec(TargetKind.USER)
    with pytest.raises(ValueError):
        PolicySpec.from_json({"version": 99, "steps": []})


def test_policy_without_steps_exhausts_immediately() -> None:
    p = PolicySpec(steps=(), repeat=0)
    d = run(p, trigger(p, T0), T0)
    assert [type(a) for a in d.actions] == [PolicyExhausted]
    assert escalate_now(p, d.state, at(1)).loop == 0


def test_naive_datetimes_are_rejected() -> None:
    p = policy(5)
    with pytest.raises(ValueError):
        trigger(p, datetime(2026, 1, 1))


def test_notification_plan_one_page_per_rule() -> None:
    rules = [
        RuleSpec(index=2, contact_method_id=11, channel="voice", delay=timedelta(minutes=7)),
        RuleSpec(index=0, contact_method_id=10, channel="sms", delay=timedelta(0)),
        RuleSpec(index=1, contact_method_id=11, channel="voice", delay=timedelta(minutes=2)),
    ]
    plan = notification_plan(rules, T0)
    assert plan == [
        PlannedPage(0, 10, "sms", T0),
        PlannedPage(1, 11, "voice", at(2)),
        PlannedPage(2, 11, "voice", at(7)),
    ]
    with pytest.raises(ValueError):
        notification_plan([rules[0], rules[0]], T0)
