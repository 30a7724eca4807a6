"""Property tests: random policies, rosters, sweep gaps (outages) and human events."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from escalations.engine import (
    AutoResolved,
    Decision,
    EngineState,
    NotifyStep,
    PolicyExhausted,
    PolicySpec,
    Retriggered,
    SkipReason,
    Status,
    StepSkipped,
    StepSpec,
    TargetKind,
    TargetSpec,
    acknowledge,
    advance,
    escalate_now,
    resolve,
    retrigger,
    snooze,
    trigger,
)

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
ROSTER_BUCKET = timedelta(minutes=30)


@st.composite
def policies(draw: st.DrawFn) -> PolicySpec:
    n = draw(st.integers(min_value=1, max_value=4))
    delays = draw(st.lists(st.sampled_from([0, 60, 300, 900]), min_size=n, max_size=n))
    repeat = draw(st.sampled_from([0, 1, 2, None]))
    if repeat is None and sum(delays) == 0:
        delays[0] = 300
    return PolicySpec(
        steps=tuple(
            StepSpec(timedelta(seconds=d), (TargetSpec(TargetKind.POSITION, position=f"p{i}"),))
            for i, d in enumerate(delays)
        ),
        repeat=repeat,
        ack_timeout=draw(st.sampled_from([None, timedelta(minutes=10), timedelta(hours=1)])),
        auto_resolve_after=draw(st.sampled_from([None, timedelta(hours=1), timedelta(hours=6)])),
        skip_empty_steps=draw(st.booleans()),
    )


# Each step's on-call set changes every 30 minutes (including empty slots), so
# roster gaps open and close during the simulation.
roster_tables = st.lists(
    st.lists(st.frozensets(st.integers(1, 6), max_size=3), min_size=4, max_size=4),
    min_size=4,
    max_size=4,
)

GAPS = [0, 1, 5, 30, 60, 120, 300, 600, 1200, 3600, 4 * 3600]
EVENT_KINDS = ["sweep"] * 8 + ["ack", "escalate", "retrigger", "snooze", "resolve"]
events = st.lists(st.tuples(st.sampled_from(GAPS), st.sampled_from(EVENT_KINDS)), max_size=80)


@dataclass
class Model:
    """What an observer of the incident timeline may assert, independent of the engine."""

    policy: PolicySpec
    notify_keys: set[tuple[int, int, int]] = field(default_factory=set)
    skip_keys: dict[tuple[int, int, int], SkipReason] = field(default_factory=dict)
    last_position: dict[int, tuple[int, int]] = field(default_factory=dict)  # cycle -> (loop, step)
    pages_per_cycle: Counter[int] = field(default_factory=Counter)
    escalations_per_cycle: Counter[int] = field(default_factory=Counter)
    paused: bool = False  # acknowledged or resolved: nobody may be paged until a re-trigger
    finished: bool = False  # resolved: nothing may ever happen again

    def check(self, before: EngineState, now: datetime, decision: Decision, roster: Callable) -> None:
        p = self.policy
        after = decision.state
        notifies = [a for a in decision.actions if isinstance(a, NotifyStep)]
        if self.finished:
            assert decision.actions == () and after == before
            return
        # No burst: one step notification per call, whatever the gap since the last sweep.
        assert len(notifies) <= 1
        for action in decision.actions:
            if isinstance(action, Retriggered):
                assert action.cycle == before.cycle + 1
                self.paused = False
            elif isinstance(action, AutoResolved):
                self.finished = True
                assert after.status is Status.RESOLVED
            elif isinstance(action, NotifyStep | StepSkipped):
                assert not self.paused, "paged while acknowledged/resolved"
                key = (action.cycle, action.step, action.loop)
                assert key not in self.notify_keys, f"{key} already paged"
                pos = (action.loop, action.step)
                # Steps within a cycle move strictly forward through (loop, step).
                assert pos > self.last_position.get(action.cycle, (-1, -1))
                if isinstance(action, NotifyStep):
                    self.notify_keys.add(key)
                else:
                    # Only a "nobody reachable, retrying" record may be followed by a
                    # second record for the same step (what the retry found later).
                    prior = self.skip_keys.get(key)
                    assert prior in (None, SkipReason.NOBODY_REACHABLE), f"{key} recorded as skipped twice"
                    self.skip_keys[key] = action.reason
                # "Nobody reachable" consumes nothing: a retry may still page that step
                # once the roster gap is filled.
                if not (isinstance(action, StepSkipped) and action.reason is SkipReason.NOBODY_REACHABLE):
                    self.last_position[action.cycle] = pos
            if isinstance(action, NotifyStep):
                assert action.at == now
                assert action.user_ids == tuple(sorted(roster(action.step)))
                assert action.user_ids
                self.pages_per_cycle[action.cycle] += 1
                if p.repeat is not None:
                    allowed = len(p.steps) * (p.repeat + 1 + self.escalations_per_cycle[action.cycle])
                    assert self.pages_per_cycle[action.cycle] <= allowed
            if isinstance(action, PolicyExhausted):
                assert after.exhausted
            assert action.explain
        if after.status is Status.RESOLVED:
            self.finished = True

        # Scheduling: never in the past; never later than any pending deadline.
        if after.next_action_at is not None:
            assert after.next_action_at >= now
        if after.status is not Status.RESOLVED and p.auto_resolve_after is not None:
            assert after.next_action_at is not None
            assert after.next_action_at <= after.triggered_at + p.auto_resolve_after
        if after.status is Status.ACKNOWLEDGED:
            wake = after.snoozed_until
            if wake is None and p.ack_timeout is not None:
                wake = after.acknowledged_at + p.ack_timeout
            deadlines = [d for d in (wake,) if d is not None]
            if p.auto_resolve_after is not None:
                deadlines.append(after.triggered_at + p.auto_resolve_after)
            assert after.next_action_at == (min(deadlines) if deadlines else None)
        if after.status is Status.TRIGGERED and not after.exhausted:
            assert after.next_action_at is not None, "an escalating incident must stay scheduled"


# ENGINE_PROPERTY_EXAMPLES lets a soak run push far more cases through the same test.
@settings(max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "300")), deadline=None)
@given(policy=policies(), table=roster_tables, script=events)
def test_random_sweeps_and_events_respect_paging_invariants(
    policy: PolicySpec, table: list[list[frozenset[int]]], script: list[tuple[int, str]]
) -> None:
    now = T0
    model = Model(policy)

    def roster_at(moment: datetime) -> Callable[[int], frozenset[int]]:
        bucket = int((moment - T0) / ROSTER_BUCKET) % 4
        return lambda step: table[step][bucket]

    def sweep(state: EngineState) -> EngineState:
        targets = roster_at(now)
        decision = advance(policy, state, now, targets)
        # Deterministic: a retried transaction rebuilds exactly the same pages.
        assert advance(policy, state, now, targets) == decision
        model.check(state, now, decision, targets)
        # Idempotent: once next_action_at moved past now, the same sweep does nothing.
        if decision.state.next_action_at is None or decision.state.next_action_at > now:
            assert advance(policy, decision.state, now, targets) == Decision(decision.state)
        return decision.state

    state = sweep(trigger(policy, now))
    for gap, kind in script:
        now += timedelta(seconds=gap)
        if kind == "sweep":
            state = sweep(state)
            continue
        if kind == "ack":
            new = acknowledge(policy, state, now)
            if new.status is not Status.TRIGGERED:
                model.paused = True
            assert acknowledge(policy, new, now) == new
        elif kind == "snooze":
            new = snooze(policy, state, now, now + timedelta(minutes=20))
            if new.status is not Status.TRIGGERED:
                model.paused = True
        elif kind == "resolve":
            new = resolve(state, now)
            model.paused = model.finished = True
        elif kind == "escalate":
            new = escalate_now(policy, state, now)
            if new.status is Status.TRIGGERED:
                model.escalations_per_cycle[new.cycle] += 1
                model.paused = False
        else:
            new = retrigger(policy, state, now)
            if new.cycle != state.cycle:
                assert (new.step, new.loop, new.status) == (-1, 0, Status.TRIGGERED)
                model.paused = False
        state = new
        if kind in ("escalate", "retrigger"):
            state = sweep(state)  # the immediate path runs the engine right away
    # Drain: sweeping on for a day must stay quiet after resolve and finite otherwise.
    for _ in range(48):
        now += timedelta(minutes=30)
        state = sweep(state)
