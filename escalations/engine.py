"""Escalation engine: a pure decision function over durable incident state.

The database row is the source of truth; this module never reads a clock, a
database or a roster. The caller (beat sweep or the immediate path on trigger)
locks the incident row, calls :func:`advance` with the frozen policy, the stored
state, ``now`` and a resolver for step targets, then persists the returned state
and the pages implied by the actions in one transaction.

Guarantees the caller relies on:

* Determinism: the same ``(policy, state, now, targets)`` always yields the same
  :class:`Decision`, so a transaction retried after a crash re-creates exactly
  the same Page keys ``(incident, cycle, step, loop, user, rule_index)``.
* Progress: every action-producing call moves ``next_action_at`` or the
  ``(cycle, step, loop)`` position forward, so feeding the new state back in with
  the same ``now`` can never re-emit a key that was already emitted.
* No bursts: one call performs at most one step notification. After an outage
  the step that is due now is paged and the following one is scheduled a full
  delay after the moment the call actually ran, not after the missed due time.

``skip_empty_steps`` semantics (see :func:`_escalate`): an empty step is
skipped at once and the next reachable step is paged in the same call, but the
skipped step's delay is carried over and added to the wait after that page.
Later tiers and the repeat cadence therefore keep their nominal schedule and a
roster gap can never collapse a loop into a paging storm (think ``primary:0s,
secondary:15m`` with nobody on secondary). If one full pass over the steps
reaches nobody, nothing is consumed: the engine marks itself ``exhausted`` "for
now" and retries every :data:`EMPTY_RETRY_INTERVAL` so that a roster gap filled
later still gets paged. ``StepSkipped`` rows are recorded for the first empty
pass only, so the timeline is not flooded once a minute.

Urgency (see :func:`trigger`, :func:`urgency_raise`): a low-urgency cycle that
starts outside the policy's support hours waits (``deferred_until``, no pages)
until they begin, then escalates from step 1. With ``raise_urgency_after`` a
low-urgency incident left unacknowledged that long becomes high urgency, once:
``next_action_at`` then wakes for whichever comes first, the raise or the
escalation's own next move, which waits in ``deferred_until`` meanwhile.
Urgency is never lowered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from escalations.support_hours import SupportHours, support_hours_contains, support_hours_next_start

__all__ = [
    "EMPTY_RETRY_INTERVAL",
    "MANUAL_STEP",
    "Action",
    "URGENCY_STEP",
    "AutoResolved",
    "Decision",
    "Deferred",
    "EngineState",
    "NotifyStep",
    "PlannedPage",
    "PolicyExhausted",
    "PolicySpec",
    "Retriggered",
    "RuleSpec",
    "SkipReason",
    "Status",
    "StepSkipped",
    "StepSpec",
    "TargetKind",
    "TargetSpec",
    "TriggerReason",
    "Urgency",
    "UrgencyRaised",
    "acknowledge",
    "advance",
    "advance_quiet",
    "escalate_now",
    "next_due",
    "notification_plan",
    "resolve",
    "restart",
    "retrigger",
    "rule_due",
    "snooze",
    "trigger",
    "urgency_raise",
    "trigger_quiet",
]

# Short enough that a freshly filled roster gap is paged within a minute, long
# enough that an all-empty incident costs one cheap sweep wake-up per minute.
EMPTY_RETRY_INTERVAL = timedelta(seconds=60)

# Step numbers >= MANUAL_STEP are reserved for pages added by hand (reassign): they live outside the
# policy's steps, with a per-incident sequence in `loop`, so their unique key never meets a policy page.
MANUAL_STEP = 32000

# The step number of the pages sent when an escalating incident's urgency is raised: its current
# responders are paged again under their high-urgency rules. Urgency is raised at most once per
# incident, so (cycle, URGENCY_STEP, loop 0) never repeats.
URGENCY_STEP = MANUAL_STEP + 1

POLICY_JSON_VERSION = 1


class Status(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Urgency(StrEnum):
    HIGH = "high"
    LOW = "low"


class TargetKind(StrEnum):
    POSITION = "position"
    USER = "user"
    TEAM = "team"
    MANAGERS = "managers"


class SkipReason(StrEnum):
    """Machine-readable ``StepSkipped.reason`` values (the ``explain`` text is for humans)."""

    # skip_empty_steps is off: the step is recorded and its delay is still waited.
    NOBODY_ON_CALL = "nobody_on_call"
    # skip_empty_steps is on: the engine moved straight on to the next step.
    EMPTY_STEP_SKIPPED = "empty_step_skipped"
    # skip_empty_steps is on and a whole pass reached nobody: retrying shortly.
    NOBODY_REACHABLE = "nobody_reachable"


class TriggerReason(StrEnum):
    """Machine-readable ``Retriggered.reason`` values."""

    ACK_TIMEOUT = "ack timeout"
    SNOOZE_ENDED = "snooze ended"


# --------------------------------------------------------------------------- policy


def _seconds(td: timedelta | None) -> int | float | None:
    if td is None:
        return None
    secs = td.total_seconds()
    # Whole seconds serialise as ints so the stored JSON stays diff-friendly.
    return int(secs) if secs == int(secs) else secs


def _duration(value: Any) -> timedelta | None:
    if value is None:
        return None
    return timedelta(seconds=value)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    kind: TargetKind
    position: str = ""
    user_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TargetKind(self.kind))
        if self.kind is TargetKind.POSITION and not self.position:
            raise ValueError("a position target needs a position name")
        if self.kind is TargetKind.USER and self.user_id is None:
            raise ValueError("a user target needs a user_id")

    def to_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "position": self.position, "user_id": self.user_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TargetSpec:
        return cls(
            kind=TargetKind(data["kind"]),
            position=data.get("position") or "",
            user_id=data.get("user_id"),
        )


@dataclass(frozen=True, slots=True)
class StepSpec:
    delay: timedelta
    targets: tuple[TargetSpec, ...]

    def __post_init__(self) -> None:
        if self.delay < timedelta(0):
            raise ValueError("step delay must not be negative")
        # Accept lists from hand-written callers but keep the frozen copy hashable.
        object.__setattr__(self, "targets", tuple(self.targets))

    def to_json(self) -> dict[str, Any]:
        return {"delay": _seconds(self.delay), "targets": [t.to_json() for t in self.targets]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepSpec:
        return cls(
            delay=timedelta(seconds=data["delay"]),
            targets=tuple(TargetSpec.from_json(t) for t in data.get("targets", ())),
        )


@dataclass(frozen=True, slots=True)
class PolicySpec:
    steps: tuple[StepSpec, ...]
    # Extra loops through all steps after the first pass; 0 = once; None = unlimited.
    repeat: int | None
    # Acknowledged but unresolved for this long -> new cycle from step 0. A snooze
    # replaces it (the responder named a time themselves).
    ack_timeout: timedelta | None = None
    # Measured from EngineState.triggered_at, i.e. the start of the current cycle,
    # so an ack-timeout/snooze re-trigger restarts it. When overdue it wins over any
    # other overdue work: paging about an incident the policy already calls stale is noise.
    auto_resolve_after: timedelta | None = None
    skip_empty_steps: bool = False
    # Low urgency outside these waits for them; None = always in support.
    support_hours: SupportHours | None = None
    # Low urgency unacknowledged this long (from the start of the cycle) becomes high urgency.
    raise_urgency_after: timedelta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if self.repeat is not None and self.repeat < 0:
            raise ValueError("repeat must be >= 0 or None (unlimited)")
        for name in ("ack_timeout", "auto_resolve_after", "raise_urgency_after"):
            value = getattr(self, name)
            if value is not None and value <= timedelta(0):
                raise ValueError(f"{name} must be positive or None")
        # Unlimited repeats with a zero-length loop would page on every sweep forever.
        if self.repeat is None and self.steps and self.loop_period == timedelta(0):
            raise ValueError("unlimited repeat needs at least one step with a positive delay")

    @property
    def loop_period(self) -> timedelta:
        return sum((s.delay for s in self.steps), timedelta(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": POLICY_JSON_VERSION,
            "steps": [s.to_json() for s in self.steps],
            "repeat": self.repeat,
            "ack_timeout": _seconds(self.ack_timeout),
            "auto_resolve_after": _seconds(self.auto_resolve_after),
            "skip_empty_steps": self.skip_empty_steps,
            "support_hours": self.support_hours.to_json() if self.support_hours else None,
            "raise_urgency_after": _seconds(self.raise_urgency_after),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicySpec:
        version = data.get("version", POLICY_JSON_VERSION)
        if version != POLICY_JSON_VERSION:
            raise ValueError(f"unsupported policy JSON version {version!r}")
        return cls(
            steps=tuple(StepSpec.from_json(s) for s in data["steps"]),
            repeat=data.get("repeat"),
            ack_timeout=_duration(data.get("ack_timeout")),
            auto_resolve_after=_duration(data.get("auto_resolve_after")),
            skip_empty_steps=bool(data.get("skip_empty_steps", False)),
            support_hours=SupportHours.from_json(data.get("support_hours")),
            raise_urgency_after=_duration(data.get("raise_urgency_after")),
        )


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class EngineState:
    status: Status
    cycle: int = 0
    # Index of the last step notified (or recorded as empty) in ``loop``; -1 = none
    # yet in this loop. Only a manual escalation past the end produces -1 with loop > 0.
    step: int = -1
    loop: int = 0
    next_action_at: datetime | None = None
    triggered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    snoozed_until: datetime | None = None
    # True when nothing more can be escalated: either all loops are done
    # (next_action_at is then None or the auto-resolve deadline) or, with
    # skip_empty_steps, a full pass reached nobody and the engine retries.
    exhausted: bool = False
    urgency: Urgency = Urgency.HIGH
    # When the escalation itself next moves, while next_action_at is earlier for the urgency raise,
    # or while a low-urgency cycle waits for support hours (then step == -1 and loop == 0).
    deferred_until: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "urgency", Urgency(self.urgency))

    @property
    def started(self) -> bool:
        """Has this cycle reached a step yet?"""
        return self.step != -1 or self.loop != 0


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class NotifyStep:
    cycle: int
    step: int
    loop: int
    user_ids: tuple[int, ...]
    at: datetime
    explain: str = ""


@dataclass(frozen=True, slots=True)
class StepSkipped:
    cycle: int
    step: int
    loop: int
    reason: SkipReason
    explain: str = ""


@dataclass(frozen=True, slots=True)
class PolicyExhausted:
    cycle: int
    loop: int
    explain: str = ""


@dataclass(frozen=True, slots=True)
class Retriggered:
    cycle: int  # the new cycle
    reason: TriggerReason
    explain: str = ""


@dataclass(frozen=True, slots=True)
class AutoResolved:
    at: datetime
    explain: str = ""


@dataclass(frozen=True, slots=True)
class Deferred:
    """A low-urgency cycle began outside support hours: nobody is paged until ``until``."""

    cycle: int
    until: datetime
    explain: str = ""


@dataclass(frozen=True, slots=True)
class UrgencyRaised:
    """Low became high urgency. ``repage``: the current responders are paged again under their
    high-urgency rules (step :data:`URGENCY_STEP`); otherwise nobody had been paged yet."""

    cycle: int
    repage: bool
    explain: str = ""


Action = NotifyStep | StepSkipped | PolicyExhausted | Retriggered | AutoResolved | Deferred | UrgencyRaised


@dataclass(frozen=True, slots=True)
class Decision:
    state: EngineState
    actions: tuple[Action, ...] = field(default=())


Targets = Callable[[int], frozenset[int]]


# --------------------------------------------------------------------------- helpers


def _require_aware(*moments: datetime | None) -> None:
    # Naive datetimes make deadline arithmetic silently wrong around DST changes.
    for moment in moments:
        if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
            raise ValueError("engine datetimes must be timezone-aware")


def _fmt(moment: datetime | None) -> str:
    return "never" if moment is None else moment.isoformat(timespec="seconds")


def _fmt_td(td: timedelta) -> str:
    total = int(td.total_seconds())
    if total == 0:
        return "0s"
    hours, rem = divmod(total, 3600)
    minutes, seconds = divmod(rem, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    return "".join(parts)


def _loop_label(policy: PolicySpec, loop: int) -> str:
    total = "unlimited" if policy.repeat is None else str(policy.repeat + 1)
    return f"loop {loop + 1}/{total}"


def _step_label(policy: PolicySpec, step: int) -> str:
    return f"step {step + 1}/{len(policy.steps)}"


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def _auto_resolve_deadline(policy: PolicySpec, state: EngineState) -> datetime | None:
    if policy.auto_resolve_after is None or state.triggered_at is None:
        return None
    return state.triggered_at + policy.auto_resolve_after


def _ack_deadline(policy: PolicySpec, state: EngineState) -> datetime | None:
    if policy.ack_timeout is None or state.acknowledged_at is None:
        return None
    return state.acknowledged_at + policy.ack_timeout


def _acknowledged_wakeup(policy: PolicySpec, state: EngineState) -> datetime | None:
    # A snooze replaces the ack timeout: the responder asked for a specific time.
    wake = state.snoozed_until if state.snoozed_until is not None else _ack_deadline(policy, state)
    return _earliest(wake, _auto_resolve_deadline(policy, state))


def _raise_deadline(policy: PolicySpec, state: EngineState) -> datetime | None:
    if (
        state.urgency is not Urgency.LOW
        or state.status is not Status.TRIGGERED
        or policy.raise_urgency_after is None
        or state.triggered_at is None
    ):
        return None
    return state.triggered_at + policy.raise_urgency_after


def _defer(policy: PolicySpec, state: EngineState, now: datetime) -> EngineState:
    """Hold a low-urgency cycle that has not started until support hours begin."""
    hours = policy.support_hours
    if state.urgency is not Urgency.LOW or hours is None or state.started or support_hours_contains(hours, now):
        return state
    start = support_hours_next_start(hours, now)
    return replace(state, deferred_until=start, next_action_at=_earliest(start, _auto_resolve_deadline(policy, state)))


def _arm(policy: PolicySpec, state: EngineState) -> EngineState:
    """Wake for the urgency raise when it comes before the escalation's own next move."""
    raise_at = _raise_deadline(policy, state)
    if raise_at is None or (state.next_action_at is not None and state.next_action_at <= raise_at):
        return state
    waiting = state.deferred_until if state.deferred_until is not None else state.next_action_at
    return replace(state, deferred_until=waiting, next_action_at=raise_at)


def _armed(policy: PolicySpec, decision: Decision) -> Decision:
    return Decision(_arm(policy, decision.state), decision.actions)


def _successor(policy: PolicySpec, step: int, loop: int) -> tuple[int, int] | None:
    """The (step, loop) after the given position, or None when the policy is used up."""
    n = len(policy.steps)
    if n == 0:
        return None
    if step + 1 < n:
        return step + 1, loop
    if policy.repeat is None or loop < policy.repeat:
        return 0, loop + 1
    return None


# --------------------------------------------------------------------------- lifecycle


def trigger(policy: PolicySpec, now: datetime, urgency: Urgency | str = Urgency.HIGH) -> EngineState:
    """State for a brand-new incident; the immediate :func:`advance` pages step 0, unless it is low
    urgency outside support hours: then ``deferred_until`` says when the first step is due."""
    _require_aware(now)
    state = EngineState(status=Status.TRIGGERED, next_action_at=now, triggered_at=now, urgency=Urgency(urgency))
    return _arm(policy, _defer(policy, state, now))


def urgency_raise(policy: PolicySpec, state: EngineState, now: datetime) -> EngineState:
    """Make the incident high urgency (a new alert said so). A cycle waiting for support hours is
    due at once; an armed raise timer is dropped. Never lowers; a no-op when already high."""
    _require_aware(now)
    if state.urgency is Urgency.HIGH or state.status is Status.RESOLVED:
        return state
    raised = replace(state, urgency=Urgency.HIGH, deferred_until=None)
    if state.status is not Status.TRIGGERED or state.deferred_until is None:
        return raised
    resume = state.deferred_until if state.started else now
    return replace(raised, next_action_at=_earliest(resume, _auto_resolve_deadline(policy, state)))


def acknowledge(policy: PolicySpec, state: EngineState, now: datetime) -> EngineState:
    """Stop escalating. Idempotent: acknowledging again (or while snoozed) changes nothing,
    so the ack-timeout clock is not restarted by a double click."""
    _require_aware(now)
    if state.status is not Status.TRIGGERED:
        return state
    acked = replace(state, status=Status.ACKNOWLEDGED, acknowledged_at=now, snoozed_until=None, deferred_until=None)
    return replace(acked, next_action_at=_acknowledged_wakeup(policy, acked))


def resolve(state: EngineState, now: datetime) -> EngineState:
    _require_aware(now)
    if state.status is Status.RESOLVED:
        return state
    return replace(state, status=Status.RESOLVED, next_action_at=None, snoozed_until=None, deferred_until=None)


def escalate_now(policy: PolicySpec, state: EngineState, now: datetime) -> EngineState:
    """Manual "escalate": the next :func:`advance` pages the step after the current one.

    Works from acknowledged (and snoozed) too. When the policy is already used up
    (last step of the last loop, or exhausted) a human asking to escalate gets one
    extra loop starting at step 0, even beyond ``repeat``: refusing would leave them
    with a button that silently does nothing. The extra loop then runs on its normal
    timers and exhausts at its end. The new loop number keeps page keys unique.
    """
    _require_aware(now)
    if state.status is Status.RESOLVED:
        return state
    step, loop, exhausted = state.step, state.loop, state.exhausted
    if policy.steps and _successor(policy, step, loop) is None:
        step, loop, exhausted = -1, loop + 1, False
    # A skip-empty "retry" exhaustion keeps its flag so already-recorded StepSkipped
    # rows are not emitted twice for the same (cycle, step, loop).
    return replace(
        state,
        status=Status.TRIGGERED,
        step=step,
        loop=loop,
        exhausted=exhausted,
        acknowledged_at=None,
        snoozed_until=None,
        deferred_until=None,
        next_action_at=now,
    )


def retrigger(policy: PolicySpec, state: EngineState, now: datetime) -> EngineState:
    """A new alert matched an existing incident (re-trigger rules).

    Acknowledged/snoozed or exhausted incidents start a new cycle at step 0. An
    incident that is still actively escalating is left alone: its responders are
    already being paged and restarting would re-page step 0 on every duplicate
    alert. Resolved incidents are left alone too; the caller opens a new incident.
    """
    _require_aware(now)
    if state.status is Status.RESOLVED:
        return state
    if state.status is Status.TRIGGERED and not state.exhausted:
        return state
    return _arm(policy, _defer(policy, _new_cycle(state, now), now))


def snooze(policy: PolicySpec, state: EngineState, now: datetime, until: datetime) -> EngineState:
    """Acknowledge (if needed) and re-trigger at ``until`` regardless of the ack timeout."""
    _require_aware(now, until)
    if state.status is Status.RESOLVED:
        return state
    if until <= now:
        raise ValueError("snooze end must be in the future")
    snoozed = replace(
        state,
        status=Status.ACKNOWLEDGED,
        acknowledged_at=state.acknowledged_at if state.status is Status.ACKNOWLEDGED else now,
        snoozed_until=until,
        deferred_until=None,
    )
    return replace(snoozed, next_action_at=_acknowledged_wakeup(policy, snoozed))


def next_due(state: EngineState) -> datetime | None:
    return None if state.status is Status.RESOLVED else state.next_action_at


def _new_cycle(state: EngineState, now: datetime) -> EngineState:
    return EngineState(
        status=Status.TRIGGERED,
        cycle=state.cycle + 1,
        step=-1,
        loop=0,
        next_action_at=now,
        triggered_at=now,
        urgency=state.urgency,
    )


# --------------------------------------------------------------------------- advance


def advance(policy: PolicySpec, state: EngineState, now: datetime, targets: Targets) -> Decision:
    """Perform whatever is due at ``now``; see the module docstring for guarantees."""
    _require_aware(now)
    if state.status is Status.RESOLVED or state.next_action_at is None or state.next_action_at > now:
        return Decision(state)

    # Auto-resolve wins over anything else that is overdue: the policy says the
    # incident is stale, so paging about it first would only be noise (this matters
    # when a sweep outage makes several deadlines due at once).
    auto_at = _auto_resolve_deadline(policy, state)
    if auto_at is not None and auto_at <= now:
        return _auto_resolve(policy, state, now, auto_at)

    if state.status is Status.ACKNOWLEDGED:
        return _armed(policy, _advance_acknowledged(policy, state, now, targets))
    return _armed(policy, _advance_triggered(policy, state, now, targets, auto_at))


def _advance_triggered(
    policy: PolicySpec, state: EngineState, now: datetime, targets: Targets, auto_at: datetime | None
) -> Decision:
    lead: tuple[Action, ...] = ()
    waiting = state.deferred_until
    why = _why_due(state, now)
    if waiting is not None and not state.started:
        why = f"low urgency, held outside support hours until {_fmt(waiting)}"
    raise_at = _raise_deadline(policy, state)
    if raise_at is not None and raise_at <= now:
        # The escalation's own next move is not due yet: page the current responders again under
        # their high-urgency rules and keep waiting for it. A cycle held for support hours starts now.
        repage = state.started and (waiting is None or waiting > now)
        unacked = _fmt_td(policy.raise_urgency_after or timedelta(0))
        state = replace(state, urgency=Urgency.HIGH, deferred_until=None)
        lead = (
            UrgencyRaised(
                state.cycle,
                repage,
                f"Urgency raised to high at {_fmt(now)}: not acknowledged within {unacked}"
                + ("; paging the current responders again with their high-urgency rules." if repage else "."),
            ),
        )
        if repage:
            return Decision(replace(state, next_action_at=waiting), lead)
        if not state.started:
            why = f"urgency raised to high at {_fmt(now)}"
    elif waiting is not None:
        if waiting > now:
            return Decision(replace(state, next_action_at=_earliest(waiting, raise_at, auto_at)))
        state = replace(state, deferred_until=None)

    if state.exhausted and _successor(policy, state.step, state.loop) is None:
        # Fully exhausted: only the auto-resolve deadline can wake us; re-aim at it.
        return Decision(replace(state, next_action_at=auto_at), lead)
    return _escalate(policy, state, now, targets, lead, why=why)


def _auto_resolve(policy: PolicySpec, state: EngineState, now: datetime, auto_at: datetime) -> Decision:
    explain = (
        f"Auto-resolved at {_fmt(now)}: no new trigger for {_fmt_td(policy.auto_resolve_after or timedelta(0))} "
        f"since {_fmt(state.triggered_at)} (deadline {_fmt(auto_at)})."
    )
    resolved = replace(state, status=Status.RESOLVED, next_action_at=None, snoozed_until=None)
    return Decision(resolved, (AutoResolved(at=now, explain=explain),))


def trigger_quiet(policy: PolicySpec, now: datetime, urgency: Urgency | str = Urgency.HIGH) -> EngineState:
    """State for an incident that pages nobody (opened during maintenance, or its policy has no
    steps): only the auto-resolve deadline wakes it, so it does not stay open for ever."""
    _require_aware(now)
    state = EngineState(status=Status.TRIGGERED, triggered_at=now, exhausted=True, urgency=Urgency(urgency))
    return replace(state, next_action_at=_auto_resolve_deadline(policy, state))


def restart(policy: PolicySpec, state: EngineState, now: datetime, *, quiet: bool = False) -> EngineState:
    """Start ``policy`` over at step 1, due now (the incident was moved to another policy).

    Acknowledged, snoozed or exhausted, the incident is triggered again, as PagerDuty does when an
    incident is reassigned to an escalation policy. The cycle number grows, so the new policy's page
    keys never meet the old one's and nothing scheduled by the old position is replayed. ``quiet``:
    the incident pages nobody (suppressed); only the auto-resolve deadline, counted afresh, remains.
    """
    _require_aware(now)
    if state.status is Status.RESOLVED:
        return state
    if quiet or not policy.steps:
        return replace(trigger_quiet(policy, now, state.urgency), cycle=state.cycle + 1)
    return _new_cycle(state, now)


def advance_quiet(policy: PolicySpec, state: EngineState, now: datetime) -> Decision:
    """:func:`advance` for an incident that pages nobody: auto-resolve when its deadline has passed,
    otherwise wait for the deadline (or for nothing). Never notifies."""
    _require_aware(now)
    if state.status is Status.RESOLVED:
        return Decision(state)
    auto_at = _auto_resolve_deadline(policy, state)
    if auto_at is not None and auto_at <= now:
        return _auto_resolve(policy, state, now, auto_at)
    if state.status is Status.ACKNOWLEDGED:
        return Decision(replace(state, next_action_at=_acknowledged_wakeup(policy, state)))
    return Decision(replace(state, next_action_at=auto_at))


def _advance_acknowledged(policy: PolicySpec, state: EngineState, now: datetime, targets: Targets) -> Decision:
    if state.snoozed_until is not None:
        if state.snoozed_until <= now:
            reason = TriggerReason.SNOOZE_ENDED
            detail = f"snooze until {_fmt(state.snoozed_until)} ended"
        else:
            return Decision(replace(state, next_action_at=_acknowledged_wakeup(policy, state)))
    else:
        ack_at = _ack_deadline(policy, state)
        if ack_at is None or ack_at > now:
            return Decision(replace(state, next_action_at=_acknowledged_wakeup(policy, state)))
        reason = TriggerReason.ACK_TIMEOUT
        detail = (
            f"acknowledged at {_fmt(state.acknowledged_at)} but not resolved within "
            f"{_fmt_td(policy.ack_timeout or timedelta(0))}"
        )
    fresh = _new_cycle(state, now)
    retriggered = Retriggered(
        cycle=fresh.cycle,
        reason=reason,
        explain=(f"Re-triggered at {_fmt(now)} ({detail}); escalation restarts at step 1 in cycle {fresh.cycle}."),
    )
    held = _defer(policy, fresh, now)
    if held.deferred_until is not None:
        deferred = Deferred(held.cycle, held.deferred_until, _deferred_explain(held.deferred_until))
        return Decision(held, (retriggered, deferred))
    return _escalate(policy, fresh, now, targets, (retriggered,), why=f"re-triggered ({reason})")


def _deferred_explain(until: datetime) -> str:
    return f"Low urgency outside support hours: nobody is paged until they begin at {_fmt(until)}."


def _why_due(state: EngineState, now: datetime) -> str:
    due = state.next_action_at
    assert due is not None
    if state.step == -1 and state.loop == 0:
        why = f"incident triggered at {_fmt(state.triggered_at)}"
    else:
        why = f"escalation was due at {_fmt(due)}"
    if now > due:
        why += f", ran {_fmt_td(now - due)} late (missed steps are not replayed)"
    return why


def _escalate(
    policy: PolicySpec,
    state: EngineState,
    now: datetime,
    targets: Targets,
    lead: tuple[Action, ...],
    *,
    why: str,
) -> Decision:
    """Move a due, triggered incident to its next step.

    At most one step is notified. With skip_empty_steps, consecutive empty steps
    are skipped in this call for at most one full pass, and their delays are
    carried onto the wait after the step that does get paged.
    """
    auto_at = _auto_resolve_deadline(policy, state)
    # In "retry" mode the first empty pass already recorded its StepSkipped rows.
    retrying = state.exhausted
    skipped: list[tuple[int, int, str]] = []  # (step, loop, label) of empty steps passed over
    carried = timedelta(0)
    step, loop = state.step, state.loop

    def record(reason: SkipReason, note: str) -> tuple[StepSkipped, ...]:
        if retrying:
            return ()
        return tuple(
            StepSkipped(state.cycle, s, lp, reason, f"Nobody on call for {lbl} at {_fmt(now)}; {note}")
            for s, lp, lbl in skipped
        )

    for _ in range(max(len(policy.steps), 1)):
        nxt = _successor(policy, step, loop)
        if nxt is None:
            explain = (
                f"Escalation policy exhausted at {_fmt(now)} after {_step_label(policy, step)}, "
                f"{_loop_label(policy, loop)}; incident stays triggered and nobody else will be paged "
                f"automatically (auto-resolve: {_fmt(auto_at)})."
                if policy.steps
                else f"Escalation policy has no steps; nobody was paged at {_fmt(now)}."
            )
            done = replace(state, step=step, loop=loop, exhausted=True, next_action_at=auto_at)
            skips = record(SkipReason.EMPTY_STEP_SKIPPED, "skipped (skip_empty_steps).")
            return Decision(done, (*lead, *skips, PolicyExhausted(state.cycle, loop, explain)))

        step, loop = nxt
        spec = policy.steps[step]
        users = tuple(sorted(targets(step)))
        label = f"{_step_label(policy, step)}, {_loop_label(policy, loop)}" + (
            f", re-trigger cycle {state.cycle}" if state.cycle else ""
        )

        if users:
            wait = spec.delay + carried
            next_at = _earliest(now + wait, auto_at)
            skipped_note = (
                f" Skipped empty step(s) {', '.join(str(s + 1) for s, _, _ in skipped)}; their "
                f"{_fmt_td(carried)} delay is added to this step's wait."
                if skipped
                else ""
            )
            explain = f"{label[0].upper()}{label[1:]}: {why}.{skipped_note} " + (
                f"Next escalation at {_fmt(next_at)} ({_fmt_td(wait)} after this page) unless acknowledged."
                if next_at is not None
                else "No further escalation is scheduled."
            )
            notified = replace(state, step=step, loop=loop, exhausted=False, next_action_at=next_at)
            notify = NotifyStep(state.cycle, step, loop, users, now, explain)
            skips = record(SkipReason.EMPTY_STEP_SKIPPED, "skipped immediately (skip_empty_steps).")
            return Decision(notified, (*lead, *skips, notify))

        if not policy.skip_empty_steps:
            next_at = _earliest(now + spec.delay, auto_at)
            explain = (
                f"Nobody on call for {label} at {_fmt(now)} ({why}); nobody was paged. "
                f"Waiting this step's {_fmt_td(spec.delay)} delay: next escalation at {_fmt(next_at)}."
            )
            empty = replace(state, step=step, loop=loop, exhausted=False, next_action_at=next_at)
            return Decision(empty, (*lead, StepSkipped(state.cycle, step, loop, SkipReason.NOBODY_ON_CALL, explain)))

        carried += spec.delay
        skipped.append((step, loop, label))

    # A full pass reached nobody. Consume nothing so the loops are still there
    # once someone is on call, and look again shortly.
    next_at = _earliest(now + EMPTY_RETRY_INTERVAL, auto_at)
    waiting = replace(state, exhausted=True, next_action_at=next_at)
    skips = record(
        SkipReason.NOBODY_REACHABLE,
        f"every step is empty, so nobody was paged; retrying every {_fmt_td(EMPTY_RETRY_INTERVAL)} "
        "until someone is on call.",
    )
    return Decision(waiting, (*lead, *skips))


# --------------------------------------------------------------------------- notification rules


@dataclass(frozen=True, slots=True)
class RuleSpec:
    index: int
    contact_method_id: int
    channel: str
    delay: timedelta
    rule_id: int | None = None  # the person's rule; None for the every-method fallback


@dataclass(frozen=True, slots=True)
class PlannedPage:
    rule_index: int
    contact_method_id: int
    channel: str
    due_at: datetime
    rule_id: int | None = None


def notification_plan(rules: Sequence[RuleSpec], reached_at: datetime) -> list[PlannedPage]:
    """One Page row per personal notification rule, due ``delay`` after the user was reached.

    Pages are rows with a due time rather than timers, so after an outage each
    overdue page is sent exactly once (its unique key includes ``rule_index``).
    Sorted by due time, then rule index, so the output is stable.
    """
    _require_aware(reached_at)
    seen: set[int] = set()
    planned: list[PlannedPage] = []
    for rule in rules:
        if rule.index in seen:
            raise ValueError(f"duplicate notification rule index {rule.index}: page keys would collide")
        if rule.delay < timedelta(0):
            raise ValueError("notification rule delay must not be negative")
        seen.add(rule.index)
        planned.append(
            PlannedPage(rule.index, rule.contact_method_id, rule.channel, reached_at + rule.delay, rule.rule_id)
        )
    planned.sort(key=lambda p: (p.due_at, p.rule_index))
    return planned


def rule_due(*, reached_at: datetime, delay: timedelta, changed_at: datetime) -> datetime | None:
    """When a rule added or edited at ``changed_at`` pages in a step that reached the person at
    ``reached_at``: ``delay`` after the reach, if that moment has not passed yet; else never.

    As GoAlert, which on each run fires the rules whose delay lies between its previous run and now,
    a change applies from the next moment the rule would be due and is never replayed: a rule
    added 35 minutes into a step with a 90-minute delay pages at minute 90, one with a 10-minute
    delay does not page in that step at all. A rule due exactly at ``changed_at`` pages at once.
    """
    _require_aware(reached_at, changed_at)
    if delay < timedelta(0):
        raise ValueError("notification rule delay must not be negative")
    due = reached_at + delay
    return due if due >= changed_at else None
