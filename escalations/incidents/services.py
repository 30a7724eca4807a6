"""Incident lifecycle: trigger, acknowledge, resolve, escalate, reassign, note, snooze.

Every write locks the incident row, asks the pure engine (`escalations.engine`) what to do, stores
the new engine state, the Page rows and the timeline in one transaction, and only after the commit
enqueues Celery work. The rows are the truth: a lost message is picked up by the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from escalations import engine
from escalations.incidents import publish
from escalations.incidents.advance import _advance_locked
from escalations.incidents.events import event_log, short
from escalations.incidents.paging import _pages_cancel, _pages_create
from escalations.incidents.state import ENGINE_FIELDS, _locked, _refresh, _spec_of, _state_of, _store_state
from escalations.incidents.timeline import _name, timeline_record
from escalations.models import EscalationPolicy, Incident, TimelineEvent
from escalations.monitoring import metrics
from escalations.policies.spec import policy_spec_build
from portal.models import User
from rotations.models import Team
from rotations.services.validation import team_paging_members_check

logger = logging.getLogger(__name__)


Status = Incident.Status


Kind = TimelineEvent.Kind


@dataclass
class TriggerResult:
    incident: Incident
    created: bool


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
            if urgency == Incident.Urgency.HIGH and existing.urgency == Incident.Urgency.LOW:
                incident_urgency_raise(
                    incident=existing, via=via, reason=f"A new alert with high urgency: {title}", now=now
                )
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
        _store_state(incident, engine.trigger(spec, now, urgency))
    elif spec is not None:
        _store_state(incident, engine.trigger_quiet(spec, now, urgency))
    else:
        incident.triggered_at = now
    incident.save()
    reason = ""
    if incident.deferred_until is not None and not incident.cycle and incident.step == -1:
        reason = (
            ": low urgency outside support hours, nobody is paged until they begin at "
            f"{incident.deferred_until.isoformat(timespec='minutes')}"
        )
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
    event_log(
        "Incident #%s opened for %s (%s): %s%s",
        incident.pk,
        team.name,
        source,
        short(title),
        " (nobody is paged)" if reason else "",
        event="incident_opened",
        incident_id=incident.pk,
        team=team.slug,
        urgency=incident.urgency,
    )
    metrics.incident_opened(urgency=incident.urgency)
    publish._on_commit_advance(incident)
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


def incident_urgency_raise(*, incident: Incident, via: str, reason: str, now: datetime | None = None) -> bool:
    """Make a low-urgency incident high urgency (never the other way). A cycle waiting for support
    hours escalates at once; responders already paged are paged again under their high-urgency rules."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(incident)
        if locked.urgency == Incident.Urgency.HIGH or locked.status == Status.RESOLVED:
            return False
        before = _state_of(locked)
        spec = _spec_of(locked)
        after = (
            engine.urgency_raise(spec, before, now)
            if spec is not None
            else replace(before, urgency=engine.Urgency.HIGH, deferred_until=None)
        )
        _store_state(locked, after)
        locked.save(update_fields=[*ENGINE_FIELDS, "updated_at"])
        repage = before.status is engine.Status.TRIGGERED and before.started and not locked.suppressed
        timeline_record(
            incident=locked,
            kind=Kind.URGENCY_RAISED,
            via=via,
            at=now,
            message=f"Urgency raised to high. {reason}"
            + (" Paging the current responders again with their high-urgency rules." if repage else ""),
            data={"cycle": locked.cycle, "repage": repage},
        )
        if repage:
            _pages_cancel(locked, now)
            _pages_create(
                incident=locked,
                cycle=locked.cycle,
                step=engine.URGENCY_STEP,
                loop=0,
                user_ids=list(locked.assignees.values_list("pk", flat=True)),
                reached_at=now,
            )
        _advance_locked(locked, now)
    _refresh(incident, locked)
    return True


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
        event_log(
            "Incident #%s acknowledged by %s via %s",
            locked.pk,
            _name(by),
            TimelineEvent.Via(via).label,
            event="incident_acknowledged",
            incident_id=locked.pk,
            via=via,
        )
        metrics.incident_acknowledged(urgency=locked.urgency, opened_at=locked.created_at, now=now)
        publish._on_commit_advance(locked)
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
        event_log(
            "Incident #%s resolved by %s via %s",
            locked.pk,
            _name(by),
            TimelineEvent.Via(via).label,
            event="incident_resolved",
            incident_id=locked.pk,
            via=via,
        )
        metrics.incident_resolved(urgency=locked.urgency, opened_at=locked.created_at, now=now)
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


def incident_policy_change(
    *, incident: Incident, policy: EscalationPolicy, by: User | None, via: str, now: datetime | None = None
) -> None:
    """Move an open incident to another policy of its team: the old policy's pending pages are
    canceled and the new one starts at step 1 at once (triggered again if it was acknowledged).

    ValueError when the policy belongs to another team or the incident is resolved.
    """
    now = now or timezone.now()
    if policy.team_id != incident.team_id:
        raise ValueError("Choose an escalation policy of this incident's team.")
    with transaction.atomic():
        locked = _locked(incident)
        if locked.status == Status.RESOLVED:
            raise ValueError("A resolved incident cannot be moved to another policy.")
        old = locked.policy.name if locked.policy is not None else None
        spec = policy_spec_build(policy)
        canceled = _pages_cancel(locked, now)
        locked.policy = policy
        locked.policy_snapshot = spec.to_json()
        _store_state(locked, engine.restart(spec, _state_of(locked), now, quiet=locked.suppressed))
        locked.acknowledged_by = None
        locked.save(update_fields=[*ENGINE_FIELDS, "policy", "policy_snapshot", "acknowledged_by", "updated_at"])
        timeline_record(
            incident=locked,
            kind=Kind.POLICY_CHANGED,
            actor=by,
            via=via,
            at=now,
            message=f"Moved from {old or 'no policy'} to {policy.name} by {_name(by)} via "
            f"{TimelineEvent.Via(via).label}; escalation restarts at step 1"
            + (f", {canceled} pending page(s) of the old policy canceled." if canceled else "."),
            data={"from_policy": old, "to_policy": policy.name, "to_policy_id": policy.pk, "canceled": canceled},
        )
        event_log("Incident #%s moved to policy %s by %s", locked.pk, policy.name, _name(by))
        _advance_locked(locked, now)
    _refresh(incident, locked)
    incident.policy = policy
    incident.policy_snapshot = locked.policy_snapshot


def incident_reassign(
    *, incident: Incident, by: User | None, to_users: Sequence[User], via: str, now: datetime | None = None
) -> None:
    """Hand the incident to these people; while it is triggered they are paged at once.

    Everyone newly assigned must be an active engineer or manager of the incident's team (a field error
    on `user_ids` otherwise): viewers are never paged, and another team's people are not ours to page.
    People already assigned may stay, so a handover that keeps them does not fail when one has since
    become a viewer or left the team."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(incident)
        current = set(locked.assignees.values_list("pk", flat=True))
        added = [u for u in to_users if u.pk not in current]
        team_paging_members_check(team=locked.team, users=added, field="user_ids")
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
        publish._on_commit_advance(locked)
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
