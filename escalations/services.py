"""Incident lifecycle: trigger, acknowledge, resolve, escalate, reassign, note, snooze.

Every write locks the incident row, asks the pure engine (`escalations.engine`) what to do, stores
the new engine state, the Page rows and the timeline in one transaction, and only after the commit
enqueues Celery work. The rows are the truth: a lost message is picked up by the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from escalations import engine
from escalations import wakeups as wakeups_mod
from escalations.models import EscalationPolicy, Incident, Page, TimelineEvent
from escalations.targets import TargetResolver
from portal.models import ContactMethod, NotificationRule, User
from rotations.models import Team

logger = logging.getLogger(__name__)

Status = Incident.Status
Kind = TimelineEvent.Kind

# Delay-0 steps are performed back to back in one call; bounded so a bad policy cannot spin.
MAX_ACTIONS_PER_CALL = 50
# Incidents per wake-up message (a message advances its incidents in one transaction).
ADVANCE_CHUNK = 50
_WAKE_HORIZON_KEY = "escalations:sweep-wake-horizon"


@dataclass
class TriggerResult:
    incident: Incident
    created: bool


@dataclass
class AdvanceResult:
    incident_id: int
    actions: int
    page_ids: list[int]


# --------------------------------------------------------------------------------- policy


def policy_spec_build(policy: EscalationPolicy) -> engine.PolicySpec:
    steps = []
    for step in policy.steps.order_by("order").prefetch_related("targets"):
        targets = tuple(
            engine.TargetSpec(kind=t.kind, position=t.position, user_id=t.user_id) for t in step.targets.all()
        )
        steps.append(engine.StepSpec(delay=step.delay, targets=targets))
    return engine.PolicySpec(
        steps=tuple(steps),
        repeat=policy.repeat,
        ack_timeout=policy.ack_timeout,
        auto_resolve_after=policy.auto_resolve_after,
        skip_empty_steps=policy.skip_empty_steps,
    )


def _spec_of(incident: Incident) -> engine.PolicySpec | None:
    if not incident.policy_snapshot:
        return None
    return engine.PolicySpec.from_json(incident.policy_snapshot)


def _state_of(incident: Incident) -> engine.EngineState:
    return engine.EngineState(
        status=engine.Status(incident.status),
        cycle=incident.cycle,
        step=incident.step,
        loop=incident.loop,
        next_action_at=incident.next_action_at,
        triggered_at=incident.triggered_at,
        acknowledged_at=incident.acknowledged_at,
        snoozed_until=incident.snoozed_until,
        exhausted=incident.exhausted,
    )


ENGINE_FIELDS = [
    "status",
    "cycle",
    "step",
    "loop",
    "next_action_at",
    "triggered_at",
    "acknowledged_at",
    "snoozed_until",
    "exhausted",
]


def _store_state(incident: Incident, state: engine.EngineState) -> None:
    incident.status = str(state.status)
    incident.cycle = state.cycle
    incident.step = state.step
    incident.loop = state.loop
    incident.next_action_at = state.next_action_at
    incident.triggered_at = state.triggered_at
    incident.acknowledged_at = state.acknowledged_at
    incident.snoozed_until = state.snoozed_until
    incident.exhausted = state.exhausted


# ------------------------------------------------------------------------------- timeline


def timeline_record(
    *,
    incident: Incident,
    kind: str,
    message: str,
    actor: User | None = None,
    via: str = TimelineEvent.Via.SYSTEM,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TimelineEvent:
    return TimelineEvent.objects.create(
        incident=incident,
        kind=kind,
        message=message,
        actor=actor,
        via=via,
        data=data or {},
        at=at or timezone.now(),
    )


def _name(user: User | None) -> str:
    return user.display_name if user is not None else "Backstop"


# --------------------------------------------------------------------------------- pages


def _rules_for(user_ids: Iterable[int]) -> dict[int, list[tuple[str, engine.RuleSpec]]]:
    """Each person's notification rules over verified, reachable contact methods, as (urgency, rule),
    followed by every such method at delay 0 as ("fallback", rule). Two queries for any number of people.
    """
    user_ids = list(user_ids)
    rules: dict[int, list[tuple[str, engine.RuleSpec]]] = {uid: [] for uid in user_ids}
    usable = Q(contact_method__verified_at__isnull=False) & Q(contact_method__opted_out_at__isnull=True)
    rows = (
        NotificationRule.objects.filter(usable, user_id__in=user_ids)
        .order_by("user_id", "order", "delay", "id")
        .values_list("user_id", "urgency", "contact_method_id", "contact_method__kind", "delay")
    )
    for user_id, urgency, method_id, kind, delay in rows:
        rule = engine.RuleSpec(index=0, contact_method_id=method_id, channel=kind, delay=delay)
        rules[user_id].append((urgency, rule))
    methods = (
        ContactMethod.objects.filter(user_id__in=user_ids, verified_at__isnull=False, opted_out_at__isnull=True)
        .order_by("user_id", "kind", "id")
        .values_list("user_id", "id", "kind")
    )
    for user_id, method_id, kind in methods:
        rule = engine.RuleSpec(index=0, contact_method_id=method_id, channel=kind, delay=timedelta(0))
        rules[user_id].append(("fallback", rule))
    return rules


def _rules_for_urgency(rules: list[tuple[str, engine.RuleSpec]], urgency: str) -> list[engine.RuleSpec]:
    """The person's rules for this urgency; with none, every verified method at once, so a
    forgotten profile never means a silent page. Indexes count within the chosen list."""
    chosen = [rule for rule_urgency, rule in rules if rule_urgency in ("any", urgency)]
    if not chosen:
        chosen = [rule for rule_urgency, rule in rules if rule_urgency == "fallback"]
    return [replace(rule, index=index) for index, rule in enumerate(chosen)]


@dataclass
class _Notify:
    incident: Incident
    cycle: int
    step: int
    loop: int
    user_ids: tuple[int, ...]
    reached_at: datetime


class _Batch:
    """Everything one engine pass writes, collected first and written with a handful of queries."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.notifies: list[_Notify] = []
        self.timeline: list[TimelineEvent] = []
        self.assign: dict[int, tuple[int, ...]] = {}
        self.users: dict[int, User] = {}
        self.page_ids: list[int] = []
        self.pages_by_incident: dict[int, list[int]] = {}

    def event(self, incident: Incident, kind: str, message: str, **data: Any) -> None:
        self.timeline.append(
            TimelineEvent(
                incident=incident, kind=kind, message=message, via=TimelineEvent.Via.SYSTEM, data=data, at=self.now
            )
        )

    def write_pages(self) -> None:
        """One Page row per (notified person, rule); unreachable people land on the timeline."""
        if not self.notifies:
            return
        user_ids = {uid for n in self.notifies for uid in n.user_ids}
        rules = _rules_for(user_ids)
        method_ids = {rule.contact_method_id for rs in rules.values() for _, rule in rs}
        destinations = dict(ContactMethod.objects.filter(pk__in=method_ids).values_list("pk", "value"))
        pages: list[tuple] = []
        for notify in self.notifies:
            incident = notify.incident
            for user_id in notify.user_ids:
                planned = engine.notification_plan(
                    _rules_for_urgency(rules.get(user_id, []), incident.urgency), notify.reached_at
                )
                if not planned:
                    self.event(
                        incident,
                        Kind.PAGE_FAILED,
                        f"{_name(self.users.get(user_id))} has no verified contact method and cannot be paged.",
                        user_id=user_id,
                    )
                for plan in planned:
                    pages.append(
                        (
                            incident.pk,
                            notify.cycle,
                            notify.step,
                            notify.loop,
                            user_id,
                            plan.rule_index,
                            plan.channel,
                            plan.contact_method_id,
                            destinations[plan.contact_method_id],
                            plan.due_at,
                        )
                    )
        if not pages:
            return
        created = _pages_insert(pages)
        self.page_ids.extend(pid for pid, _, _ in created)
        for pid, _, incident_id in created:
            self.pages_by_incident.setdefault(incident_id, []).append(pid)
        _on_commit_deliver([(pid, due) for pid, due, _ in created])

    def flush(self, incidents: list[Incident]) -> None:
        self.write_pages()
        if self.assign:
            through = Incident.assignees.through
            through.objects.filter(incident_id__in=list(self.assign)).delete()
            through.objects.bulk_create(
                [through(incident_id=iid, user_id=uid) for iid, uids in self.assign.items() for uid in uids]
            )
        TimelineEvent.objects.bulk_create(self.timeline, batch_size=1000)
        if incidents:
            _incidents_store(incidents)
            _on_commit_advance_many(incidents)


_PAGE_INSERT_SQL = (
    "INSERT INTO escalations_page (incident_id, cycle, step, loop, user_id, rule_index, channel, contact_method_id, "
    "destination, due_at, status, attempts, provider_id, error, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '', '', %s) ON CONFLICT DO NOTHING RETURNING id"
)


def _pages_insert(pages: Sequence[tuple]) -> list[tuple[int, datetime, int]]:
    """Insert pending pages given as (incident, cycle, step, loop, user, rule index, channel, contact
    method, destination, due) and return (id, due, incident id) of the rows created.

    The unique notification key makes a re-run of the same decision harmless: a row that exists is
    skipped (ON CONFLICT DO NOTHING), not created twice. One prepared statement executed many times
    (pipelined by psycopg): Django's bulk_create spends more on building model instances than the
    database spends on the rows.
    """
    moment = connection.ops.adapt_datetimefield_value  # the backend's own encoding (SQLite stores text)
    created_at = moment(timezone.now())
    pending = Page.Status.PENDING.value
    rows = [(*page[:9], moment(page[9]), pending, created_at) for page in pages]
    created: list[tuple[int, datetime, int]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.cursor.executemany(_PAGE_INSERT_SQL, rows, returning=True)
            raw = cursor.cursor
            for page in pages:
                row = raw.fetchone()
                if row is not None:
                    created.append((row[0], page[9], page[0]))
                if not raw.nextset():
                    break
        else:  # the SQLite demo: a handful of pages at a time
            for page, row in zip(pages, rows, strict=True):
                cursor.execute(_PAGE_INSERT_SQL, row)
                found = cursor.fetchone()
                if found is not None:
                    created.append((found[0], page[9], page[0]))
    return created


def _pages_create(
    *, incident: Incident, cycle: int, step: int, loop: int, user_ids: Sequence[int], reached_at: datetime
) -> list[int]:
    """Page these people now (outside the policy's steps, e.g. a reassignment)."""
    batch = _Batch(reached_at)
    batch.users = User.objects.in_bulk(list(user_ids))
    batch.notifies.append(_Notify(incident, cycle, step, loop, tuple(user_ids), reached_at))
    batch.write_pages()
    TimelineEvent.objects.bulk_create(batch.timeline)
    return batch.page_ids


def _on_commit_deliver(page_ids_due: list[tuple[int, datetime]]) -> None:
    if not page_ids_due:
        return

    def enqueue() -> None:
        from escalations.delivery_tasks import page_enqueue

        page_enqueue([pid for pid, _ in page_ids_due], {pid: due for pid, due in page_ids_due})

    # robust: a broker hiccup must not fail the committed work; the sweep re-finds anything due.
    transaction.on_commit(enqueue, robust=True)


def _pages_cancel(incident: Incident, now: datetime) -> int:
    return Page.objects.filter(incident=incident, status=Page.Status.PENDING).update(
        status=Page.Status.CANCELED, status_at=now
    )


# -------------------------------------------------------------------------------- advance


def _on_commit_advance(incident: Incident) -> None:
    _on_commit_advance_many([incident])


def _on_commit_advance_many(incidents: Iterable[Incident]) -> None:
    """Wake the engine for these incidents at their next actions; the sweep is the safety net.

    Incidents due in the same second share one message, so a busy sweep publishes a few messages
    per batch rather than one per incident.
    """
    wakeups = [(i.pk, i.next_action_at) for i in incidents if i.next_action_at is not None]
    if not wakeups:
        return
    # robust: a broker hiccup must not fail the committed work; the sweep re-finds anything due.
    transaction.on_commit(lambda: incidents_wake(wakeups=wakeups, now=timezone.now()), robust=True)


def incidents_wake(*, wakeups: Iterable[tuple[int, datetime]], now: datetime) -> int:
    """Publish `incidents_advance` messages timed for these (incident id, due) pairs; returns the
    number of messages. Ids due in the same bucket (BACKSTOP_WAKE_GRANULARITY) share a message.
    Duplicates are harmless: an advance only acts on what is due and not locked elsewhere."""
    from escalations.tasks import incidents_advance as incidents_advance_task

    groups = wakeups_mod.eta_groups(wakeups, now=now, granularity=settings.BACKSTOP_WAKE_GRANULARITY)
    sent = 0
    for eta, ids in groups.items():
        for chunk in wakeups_mod.chunks(ids, ADVANCE_CHUNK):
            incidents_advance_task.apply_async((chunk,), eta=eta)
            sent += 1
    return sent


_INCIDENT_UPDATE_SQL = (
    "UPDATE escalations_incident SET status = %s, cycle = %s, step = %s, loop = %s, next_action_at = %s, "
    "triggered_at = %s, acknowledged_at = %s, snoozed_until = %s, exhausted = %s, resolved_at = %s, "
    "resolved_by_id = %s, acknowledged_by_id = %s, updated_at = %s WHERE id = %s"
)


def _incidents_store(incidents: Sequence[Incident]) -> None:
    """Write the engine state of many incidents. One prepared statement executed many times: Django's
    bulk_update builds a CASE expression per field and row, which costs seconds for a large batch."""
    moment = connection.ops.adapt_datetimefield_value  # the backend's own encoding (SQLite stores text)
    rows = [
        (
            i.status,
            i.cycle,
            i.step,
            i.loop,
            moment(i.next_action_at),
            moment(i.triggered_at),
            moment(i.acknowledged_at),
            moment(i.snoozed_until),
            i.exhausted,
            moment(i.resolved_at),
            i.resolved_by_id,
            i.acknowledged_by_id,
            moment(i.updated_at),
            i.pk,
        )
        for i in incidents
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_INCIDENT_UPDATE_SQL, rows)


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
        if spec is None or incident.suppressed:
            incident.next_action_at = None
            changed.append(incident)
            results.append(AdvanceResult(incident.pk, 0, []))
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
    return advanced, incidents_wake(wakeups=soon, now=now) if soon else 0


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


# -------------------------------------------------------------------------------- trigger


def incident_open_get(*, team: Team, dedup_key: str) -> Incident | None:
    if not dedup_key:
        return None
    return Incident.objects.filter(team=team, dedup_key=dedup_key).exclude(status=Status.RESOLVED).first()


def incident_trigger(
    *,
    team: Team,
    title: str,
    details: str = "",
    severity: str = Incident.Severity.ERROR,
    urgency: str = Incident.Urgency.HIGH,
    source: str = Incident.Source.MANUAL,
    dedup_key: str = "",
    payload: dict[str, Any] | None = None,
    links: list[Any] | None = None,
    policy: EscalationPolicy | None = None,
    suppressed: bool = False,
    actor: User | None = None,
    via: str = TimelineEvent.Via.SYSTEM,
    now: datetime | None = None,
    alert_data: dict[str, Any] | None = None,
) -> TriggerResult:
    """Open an incident, or count another alert on the open one with the same dedup key.

    A repeated alert gets an "alert" timeline row whose data is `alert_data`, or a copy of `payload`
    when that is None. Intake passes a small reference instead: it keeps every raw payload on its
    Alert rows already, and copying it into the timeline doubled the write for every repeat.
    """
    now = now or timezone.now()
    title = (title or "").strip()[:1024] or "(no summary)"
    for _ in range(3):
        existing = _alert_append(
            team=team,
            dedup_key=dedup_key,
            title=title,
            data=alert_data if alert_data is not None else {"payload": payload or {}},
            via=via,
            now=now,
        )
        if existing is not None:
            return TriggerResult(existing, False)
        try:
            with transaction.atomic():
                return TriggerResult(
                    _incident_open(
                        team=team,
                        title=title,
                        details=details,
                        severity=severity,
                        urgency=urgency,
                        source=source,
                        dedup_key=dedup_key,
                        payload=payload,
                        links=links,
                        policy=policy,
                        suppressed=suppressed,
                        actor=actor,
                        via=via,
                        now=now,
                    ),
                    True,
                )
        except IntegrityError:
            # Another request opened the same (team, dedup_key) a moment ago: join it.
            continue
    raise RuntimeError(f"could not open or find the incident for dedup key {dedup_key!r}")


def _incident_open(
    *, team, title, details, severity, urgency, source, dedup_key, payload, links, policy, suppressed, actor, via, now
) -> Incident:
    policy = policy or team.escalation_policy
    spec = policy_spec_build(policy) if policy is not None else None
    incident = Incident(
        team=team,
        policy=policy,
        policy_snapshot=spec.to_json() if spec else {},
        title=title,
        details=details,
        severity=severity,
        urgency=urgency,
        source=source,
        dedup_key=dedup_key,
        payload=payload or {},
        links=links or [],
        suppressed=suppressed,
        created_at=now,
    )
    if spec is not None and spec.steps and not suppressed:
        _store_state(incident, engine.trigger(spec, now))
    else:
        incident.triggered_at = now
    incident.save()
    reason = ""
    if suppressed:
        reason = " during a maintenance window: recorded, nobody is paged"
    elif spec is None or not spec.steps:
        reason = f": {team} has no escalation policy with steps, nobody is paged"
    timeline_record(
        incident=incident,
        kind=Kind.CREATED,
        actor=actor,
        via=via,
        at=now,
        message=f"Opened by {_name(actor) if actor else via}{reason}.",
        data={"source": source, "dedup_key": dedup_key, "policy": policy.name if policy else None},
    )
    _on_commit_advance(incident)
    return incident


def _alert_append(
    *, team: Team, dedup_key: str, title: str, data: dict[str, Any], via: str, now: datetime
) -> Incident | None:
    """Count another alert on the open incident with this dedup key; None if there is no open one.

    One `UPDATE … RETURNING` finds, counts and reloads the incident (the hot path of repeated
    alerts): no separate lookup, no refresh, and no window in which the incident could be resolved
    between finding and counting it. No savepoint: an error here fails the caller's transaction anyway.
    """
    if not dedup_key:
        return None
    with transaction.atomic(savepoint=False):
        incident = next(
            iter(
                Incident.objects.raw(
                    _ALERT_APPEND_SQL,
                    [
                        connection.ops.adapt_datetimefield_value(now),
                        team.pk,
                        dedup_key,
                        Status.RESOLVED,
                    ],
                )
            ),
            None,
        )
        if incident is None:
            return None
        timeline_record(
            incident=incident,
            kind=Kind.ALERT,
            via=via,
            at=now,
            message=f"Another alert for this incident: {title}",
            data=data,
        )
    return incident


_ALERT_APPEND_SQL = (
    f"UPDATE {Incident._meta.db_table} SET alert_count = alert_count + 1, updated_at = %s"
    " WHERE team_id = %s AND dedup_key = %s AND status <> %s RETURNING *"
)


# -------------------------------------------------------------------------------- actions


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update(of=("self",)).select_related("team").get(pk=incident.pk)


def _refresh(target: Incident, source: Incident) -> None:
    for field in [*ENGINE_FIELDS, "acknowledged_by_id", "resolved_at", "resolved_by_id"]:
        setattr(target, field, getattr(source, field))


def incident_acknowledge(*, incident: Incident, by: User | None, via: str, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(incident)
        if locked.status != Status.TRIGGERED:
            return False
        spec = _spec_of(locked)
        state = _state_of(locked)
        if spec is not None:
            state = engine.acknowledge(spec, state, now)
        else:
            state = replace(state, status=engine.Status.ACKNOWLEDGED, acknowledged_at=now, next_action_at=None)
        _store_state(locked, state)
        locked.acknowledged_by = by
        locked.save(update_fields=[*ENGINE_FIELDS, "acknowledged_by", "updated_at"])
        canceled = _pages_cancel(locked, now)
        timeline_record(
            incident=locked,
            kind=Kind.ACKNOWLEDGED,
            actor=by,
            via=via,
            at=now,
            message=f"Acknowledged by {_name(by)} via {TimelineEvent.Via(via).label}"
            + (f"; {canceled} pending page(s) canceled." if canceled else "."),
        )
        _on_commit_advance(locked)
    _refresh(incident, locked)
    return True


def incident_resolve(
    *, incident: Incident, by: User | None, via: str, now: datetime | None = None, note: str = ""
) -> bool:
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(incident)
        if locked.status == Status.RESOLVED:
            return False
        _store_state(locked, engine.resolve(_state_of(locked), now))
        locked.resolved_at = now
        locked.resolved_by = by
        locked.save(update_fields=[*ENGINE_FIELDS, "resolved_at", "resolved_by", "updated_at"])
        _pages_cancel(locked, now)
        timeline_record(
            incident=locked,
            kind=Kind.RESOLVED,
            actor=by,
            via=via,
            at=now,
            message=f"Resolved by {_name(by)} via {TimelineEvent.Via(via).label}." + (f" {note}" if note else ""),
        )
    _refresh(incident, locked)
    return True


def incident_escalate(*, incident: Incident, by: User | None, via: str, now: datetime | None = None) -> bool:
    """Escalate to the next step now (also from acknowledged: someone asked for help)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(incident)
        spec = _spec_of(locked)
        if locked.status == Status.RESOLVED or spec is None or not spec.steps or locked.suppressed:
            return False
        _store_state(locked, engine.escalate_now(spec, _state_of(locked), now))
        locked.acknowledged_by = None
        locked.save(update_fields=[*ENGINE_FIELDS, "acknowledged_by", "updated_at"])
        timeline_record(
            incident=locked,
            kind=Kind.ESCALATED,
            actor=by,
            via=via,
            at=now,
            message=f"Escalated to the next step by {_name(by)} via {TimelineEvent.Via(via).label}.",
        )
        _advance_locked(locked, now)
    _refresh(incident, locked)
    return True


def incident_reassign(
    *, incident: Incident, by: User | None, to_users: Sequence[User], via: str, now: datetime | None = None
) -> None:
    """Hand the incident to these people; while it is triggered they are paged at once."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(incident)
        locked.assignees.set(to_users)
        names = ", ".join(u.display_name for u in to_users) or "nobody"
        timeline_record(
            incident=locked,
            kind=Kind.REASSIGNED,
            actor=by,
            via=via,
            at=now,
            message=f"Reassigned to {names} by {_name(by)}.",
            data={"user_ids": [u.pk for u in to_users]},
        )
        if locked.status == Status.TRIGGERED and to_users and not locked.suppressed:
            sequence = locked.timeline.filter(kind=Kind.REASSIGNED).count()
            _pages_create(
                incident=locked,
                cycle=locked.cycle,
                step=engine.MANUAL_STEP,
                loop=sequence,
                user_ids=[u.pk for u in to_users],
                reached_at=now,
            )


def incident_note_add(
    *, incident: Incident, by: User | None, text: str, via: str, now: datetime | None = None
) -> TimelineEvent:
    text = text.strip()
    if not text:
        raise ValueError("A note needs some text.")
    return timeline_record(
        incident=incident, kind=Kind.NOTE, actor=by, via=via, message=text[:10000], at=now or timezone.now()
    )


def incident_snooze(
    *, incident: Incident, by: User | None, until: datetime, via: str, now: datetime | None = None
) -> None:
    now = now or timezone.now()
    if until <= now:
        raise ValueError("Snooze until a moment in the future.")
    with transaction.atomic():
        locked = _locked(incident)
        spec = _spec_of(locked)
        if locked.status == Status.RESOLVED or spec is None:
            raise ValueError("Only an open incident with an escalation policy can be snoozed.")
        was_triggered = locked.status == Status.TRIGGERED
        _store_state(locked, engine.snooze(spec, _state_of(locked), now, until))
        if was_triggered:
            locked.acknowledged_by = by
        locked.save(update_fields=[*ENGINE_FIELDS, "acknowledged_by", "updated_at"])
        _pages_cancel(locked, now)
        timeline_record(
            incident=locked,
            kind=Kind.SNOOZED,
            actor=by,
            via=via,
            at=now,
            message=f"Snoozed by {_name(by)} until {until.isoformat(timespec='minutes')}.",
            data={"until": until.isoformat()},
        )
        _on_commit_advance(locked)
    _refresh(incident, locked)


def incident_retrigger(*, incident: Incident, via: str, reason: str, now: datetime | None = None) -> bool:
    """A new alert or call for an acknowledged incident: escalate again from the first step."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(incident)
        spec = _spec_of(locked)
        if spec is None or locked.status == Status.RESOLVED or locked.suppressed:
            return False
        before = _state_of(locked)
        after = engine.retrigger(spec, before, now)
        if after == before:
            return False
        _store_state(locked, after)
        locked.acknowledged_by = None
        locked.save(update_fields=[*ENGINE_FIELDS, "acknowledged_by", "updated_at"])
        timeline_record(incident=locked, kind=Kind.RETRIGGERED, via=via, at=now, message=reason)
        _advance_locked(locked, now)
    _refresh(incident, locked)
    return True


def incidents_open_count_by_team(team_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        Incident.objects.filter(team_id__in=list(team_ids))
        .exclude(status=Status.RESOLVED)
        .values("team_id")
        .annotate(n=Count("id"))
    )
    return {row["team_id"]: row["n"] for row in rows}
