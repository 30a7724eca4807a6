"""Advancing incidents: the engine's decisions applied under the row lock, and the sweep that finds due incidents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from escalations import engine
from escalations.incidents import publish
from escalations.incidents.events import event_log
from escalations.incidents.paging import _Batch, _Notify, _pages_cancel
from escalations.incidents.state import _spec_of, _state_of, _store_state
from escalations.incidents.targets import TargetResolver
from escalations.incidents.timeline import _name
from escalations.models import Incident, TimelineEvent
from escalations.monitoring import metrics
from portal.models import User

Status = Incident.Status
Kind = TimelineEvent.Kind

# Delay-0 steps are performed back to back in one call; bounded so a bad policy cannot spin.
MAX_ACTIONS_PER_CALL = 50


_WAKE_HORIZON_KEY = "escalations:sweep-wake-horizon"


@dataclass
class AdvanceResult:
    incident_id: int
    actions: int
    page_ids: list[int]


def _apply_actions(batch: _Batch, incident: Incident, actions: Sequence[engine.Action]) -> None:
    now = batch.now
    for action in actions:
        if isinstance(action, engine.NotifyStep):
            names = ", ".join(_name(batch.users.get(uid)) for uid in action.user_ids)
            batch.notifies.append(_Notify(incident, action.cycle, action.step, action.loop, action.user_ids, now))
            batch.event(
                incident,
                Kind.STEP_REACHED,
                f"Paging {names}. {action.explain}",
                cycle=action.cycle,
                step=action.step,
                loop=action.loop,
                user_ids=list(action.user_ids),
            )
            batch.assign[incident.pk] = action.user_ids
            event_log(
                "Incident #%s reached step %s: paging %s",
                incident.pk,
                action.step + 1,
                names,
                event="step_reached",
                incident_id=incident.pk,
                step=action.step,
                cycle=action.cycle,
                loop=action.loop,
            )
        elif isinstance(action, engine.StepSkipped):
            batch.event(
                incident,
                Kind.STEP_SKIPPED,
                action.explain,
                cycle=action.cycle,
                step=action.step,
                loop=action.loop,
                reason=str(action.reason),
            )
        elif isinstance(action, engine.PolicyExhausted):
            batch.event(incident, Kind.EXHAUSTED, action.explain, cycle=action.cycle, loop=action.loop)
        elif isinstance(action, engine.Retriggered):
            incident.acknowledged_by = None
            batch.event(incident, Kind.RETRIGGERED, action.explain, cycle=action.cycle, reason=str(action.reason))
        elif isinstance(action, engine.Deferred):
            batch.event(incident, Kind.DEFERRED, action.explain, cycle=action.cycle, until=action.until.isoformat())
        elif isinstance(action, engine.UrgencyRaised):
            batch.event(incident, Kind.URGENCY_RAISED, action.explain, cycle=action.cycle, repage=action.repage)
            if action.repage:
                # The pages planned under the low-urgency rules give way to the high-urgency ones,
                # written at flush, when the incident row already says high.
                _pages_cancel(incident, now)
                user_ids = tuple(incident.assignees.values_list("pk", flat=True))
                batch.notifies.append(_Notify(incident, action.cycle, engine.URGENCY_STEP, 0, user_ids, now))
        elif isinstance(action, engine.AutoResolved):
            incident.resolved_at = now
            incident.resolved_by = None
            _pages_cancel(incident, now)
            batch.event(incident, Kind.RESOLVED, action.explain)


def _advance_locked_batch(incidents: Sequence[Incident], now: datetime) -> list[AdvanceResult]:
    """Perform everything due for locked incident rows. The caller holds the transaction."""
    resolver = TargetResolver(team_ids={i.team_id for i in incidents}, at=now)
    batch = _Batch(now)
    decided: list[tuple[Incident, engine.EngineState, list[engine.Action]]] = []
    changed: list[Incident] = []
    results: list[AdvanceResult] = []
    for incident in incidents:
        spec = _spec_of(incident)
        if spec is None:
            incident.next_action_at = None
            changed.append(incident)
            results.append(AdvanceResult(incident.pk, 0, []))
            continue
        if incident.suppressed:
            # Pages nobody, but the policy's auto-resolve deadline still closes it.
            quiet = engine.advance_quiet(spec, _state_of(incident), now)
            decided.append((incident, quiet.state, list(quiet.actions)))
            continue
        cache: dict[int, frozenset[int]] = {}

        def targets(step_index: int, spec=spec, cache=cache, team_id=incident.team_id) -> frozenset[int]:
            if step_index not in cache:
                cache[step_index] = resolver.users_for(team_id=team_id, step=spec.steps[step_index])
            return cache[step_index]

        state = _state_of(incident)
        actions: list[engine.Action] = []
        for _ in range(MAX_ACTIONS_PER_CALL):
            decision = engine.advance(spec, state, now, targets)
            if decision.state == state and not decision.actions:
                break
            actions.extend(decision.actions)
            state = decision.state
            if state.next_action_at is None or state.next_action_at > now:
                break
        decided.append((incident, state, actions))
    notified = {uid for _, _, acts in decided for a in acts if isinstance(a, engine.NotifyStep) for uid in a.user_ids}
    batch.users = User.objects.in_bulk(list(notified)) if notified else {}
    for incident, state, actions in decided:
        metrics.steps_observe(
            due_at=incident.next_action_at, now=now, reached=sum(isinstance(a, engine.NotifyStep) for a in actions)
        )
        _apply_actions(batch, incident, actions)
        _store_state(incident, state)
        incident.updated_at = now
        changed.append(incident)
        results.append(AdvanceResult(incident.pk, len(actions), []))
    batch.flush(changed)
    by_incident = batch.pages_by_incident
    for result in results:
        result.page_ids = by_incident.get(result.incident_id, [])
    return results


def _advance_locked(incident: Incident, now: datetime) -> AdvanceResult:
    return _advance_locked_batch([incident], now)[0]


def incident_advance(*, incident_id: int, now: datetime | None = None) -> AdvanceResult | None:
    """Advance one incident if it is due. Safe to call any number of times, from anywhere."""
    results = _advance_due([incident_id], now or timezone.now())
    return results[0] if results else None


def _advance_due(incident_ids: Sequence[int], now: datetime) -> list[AdvanceResult]:
    """Lock those of these incidents that are due and not locked elsewhere (whoever holds a lock is
    advancing that incident), and advance them together in one transaction."""
    with transaction.atomic():
        due = list(
            Incident.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=list(incident_ids), next_action_at__lte=now)
            .exclude(status=Status.RESOLVED)
            .order_by("pk")
        )
        return _advance_locked_batch(due, now) if due else []


def incidents_advance(*, incident_ids: Sequence[int], now: datetime | None = None) -> int:
    """Advance those of these incidents that are due, together in one transaction (one wake-up
    message). Returns how many were advanced."""
    return len(_advance_due(incident_ids, now or timezone.now()))


def incidents_due_soon_get(*, now: datetime, within: timedelta) -> list[tuple[int, datetime]]:
    """(id, next_action_at) of open incidents falling due in (now, now + within]."""
    return list(
        Incident.objects.filter(next_action_at__gt=now, next_action_at__lte=now + within)
        .exclude(status=Status.RESOLVED)
        .order_by()  # the model's default ordering would sort the window for nothing
        .values_list("pk", "next_action_at")
    )


def escalations_sweep_with_lookahead(*, lookahead: timedelta, batch: int = 200) -> tuple[int, int]:
    """The periodic sweep: advance everything due, then publish precisely timed wake-ups for what
    falls due before the next sweeps, so an incident whose own message was lost (or that was due
    too far ahead to get one) is still advanced on time, not up to a sweep interval late.
    Returns (advanced, wake-up messages)."""
    advanced = escalations_sweep(batch=batch)
    now = timezone.now()
    until = now + lookahead
    # Each sweep publishes only past the horizon the previous one reached, so an incident gets one
    # timed wake-up rather than one per sweep in the window. Lost horizon (cache restart) or a second
    # beat: the window is published again; a duplicate wake-up is a no-op.
    start = cache.get(_WAKE_HORIZON_KEY)
    if not isinstance(start, datetime) or start < now or start > until:
        start = now
    soon = incidents_due_soon_get(now=start, within=until - start)
    cache.set(_WAKE_HORIZON_KEY, until, timeout=max(60, int(lookahead.total_seconds() * 4)))
    return advanced, publish.incidents_wake(wakeups=soon, now=now) if soon else 0


def escalations_sweep(*, now: datetime | None = None, batch: int = 200, max_batches: int = 50) -> int:
    """Advance every due incident. Concurrent sweeps split the work (SKIP LOCKED), never double it.

    Without an explicit `now` each batch reads the clock afresh, so a long sweep does not stamp
    late work with a stale time or schedule the next step from it.
    """
    fixed_now = now
    advanced = 0
    for _ in range(max_batches):
        current = fixed_now or timezone.now()
        with transaction.atomic():
            due = list(
                Incident.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(next_action_at__lte=current)
                .exclude(status=Status.RESOLVED)
                .order_by("next_action_at")[:batch]
            )
            if due:
                _advance_locked_batch(due, current)
        advanced += len(due)
        if len(due) < batch:
            break
    return advanced
