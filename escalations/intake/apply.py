"""Alert intake: turn PagerDuty Events API v2, Alertmanager webhook v4, generic webhook and heartbeat
events into calls of the incident services.

No HTTP here. Every event is parsed and validated COMPLETELY, in pure Python, into frozen dataclasses
before anything is written: the web views do that, then store the event in the inbox
(`escalations.intake.inbox`), so a malformed event stores nothing. The `*_apply` functions apply one
validated event in one transaction (the inbox drain uses them, and the `*_process` functions that
parse and apply at once); escalation is not done here: the incident services enqueue the engine on
commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from escalations.incidents import selectors as incidents_selectors
from escalations.incidents import services
from escalations.intake.parsers import (
    SUMMARY_MAX,
    AlertmanagerMessage,
    EventInvalid,
    GenericEvent,
    PagerDutyChange,
    PagerDutyEvent,
    alertmanager_parse,
    pagerduty_details,
    pagerduty_event_parse,
    pagerduty_links,
    summary_of,
    urgency_of,
)
from escalations.models import (
    Alert,
    AlertGroupMember,
    ChangeEvent,
    Incident,
    Integration,
    MaintenanceWindow,
    TimelineEvent,
)

VIA = TimelineEvent.Via.INTEGRATION


def _integration_get(
    key: str, *, kinds: tuple[str, ...] | None = None, maintenance_at: datetime | None = None
) -> Integration:
    """The enabled integration with this key (team and policy joined), or EventInvalid.

    With `maintenance_at`, the same query also answers `maintenance_active` for that moment, as
    `integration.in_maintenance`: one round trip instead of two on every event, and never stale.
    """
    queryset = Integration.objects.select_related("team", "policy")
    if maintenance_at is not None:
        queryset = queryset.annotate(
            in_maintenance=Exists(
                MaintenanceWindow.objects.filter(
                    Q(integration__isnull=True) | Q(integration=OuterRef("pk")),
                    team=OuterRef("team"),
                    start__lte=maintenance_at,
                    end__gt=maintenance_at,
                )
            )
        )
    integration = queryset.filter(key=key).first()
    if integration is None or (kinds is not None and integration.kind not in kinds):
        raise EventInvalid(["Invalid routing key"])
    if not integration.enabled:
        raise EventInvalid(["This integration is disabled; enable it in Backstop to accept events"])
    return integration


def maintenance_active(*, team, integration: Integration | None, now: datetime) -> bool:
    """True if a maintenance window covers `now` for the team as a whole or for this integration."""
    scope = Q(integration__isnull=True)
    if integration is not None:
        scope |= Q(integration=integration)
    return MaintenanceWindow.objects.filter(scope, team=team, start__lte=now, end__gt=now).exists()


def _trigger(
    *,
    integration: Integration,
    now: datetime,
    suppressed: bool | None = None,
    source: str = Incident.Source.ALERT,
    **kwargs,
):
    if suppressed is None:
        suppressed = maintenance_active(team=integration.team, integration=integration, now=now)
    result = services.incident_trigger(
        team=integration.team,
        policy=integration.policy,
        suppressed=suppressed,
        source=source,
        via=VIA,
        now=now,
        # The raw payload goes on the Alert row the caller writes; the timeline only points there.
        alert_data={"integration": integration.pk},
        **kwargs,
    )
    return result, suppressed


@dataclass(frozen=True)
class PagerDutyResult:
    dedup_key: str
    action: str
    incident: Incident | None  # None: acknowledge/resolve for a key with no open incident (a no-op)
    created: bool
    suppressed: bool = False


def pagerduty_event_process(*, integration_key: str | None, body: Any, now: datetime | None = None) -> PagerDutyResult:
    """Events API v2 semantics, applied at once. `integration_key` overrides body["routing_key"] when given.

    HTTP intake does not call this: it stores the validated event in the inbox and the drain applies
    it (`escalations.intake.inbox`) with the same `pagerduty_apply`.
    """
    now = now or timezone.now()
    if integration_key is not None and isinstance(body, dict):
        body = {**body, "routing_key": integration_key}
    event = pagerduty_event_parse(body)
    trigger = event.action == "trigger"
    integration = _integration_get(
        event.routing_key, kinds=(Integration.Kind.PAGERDUTY,), maintenance_at=now if trigger else None
    )
    dedup_key = event.dedup_key or (uuid.uuid4().hex if trigger else "")
    return pagerduty_apply(
        integration=integration,
        event=event,
        raw=body,
        dedup_key=dedup_key,
        now=now,
        suppressed=integration.in_maintenance if trigger else False,
    )


def pagerduty_apply(
    *, integration: Integration, event: PagerDutyEvent, raw: dict, dedup_key: str, now: datetime, suppressed: bool
) -> PagerDutyResult:
    """Apply one validated event of an accepted integration (enabled or not: it was accepted)."""
    with transaction.atomic():
        if event.action == "trigger":
            result, suppressed = _trigger(
                integration=integration,
                now=now,
                suppressed=suppressed,
                title=event.summary,
                details=pagerduty_details(event),
                severity=event.severity,
                urgency=urgency_of(rule=integration.urgency_rule, severity=event.severity),
                dedup_key=dedup_key,
                payload={"integration": integration.pk, "pagerduty": raw},
                links=pagerduty_links(event),
            )
            _alert_record(
                integration=integration,
                incident=result.incident,
                now=now,
                action=Alert.Action.TRIGGER,
                dedup_key=dedup_key,
                status=Alert.Status.SUPPRESSED if suppressed else Alert.Status.FIRING,
                summary=event.summary,
                payload=raw,
            )
            return PagerDutyResult(dedup_key, "trigger", result.incident, result.created, suppressed)

        incident = incidents_selectors.incident_open_get(team=integration.team, dedup_key=dedup_key)
        status = action_apply(incident=incident, action=event.action, now=now)
        _alert_record(
            integration=integration,
            incident=incident,
            now=now,
            action=event.action,
            dedup_key=dedup_key,
            status=status,
            summary=summary_of(raw),
            payload=raw,
        )
        return PagerDutyResult(dedup_key, event.action, incident, False)


def action_apply(*, incident: Incident | None, action: str, now: datetime) -> str:
    """Acknowledge or resolve the open incident of a dedup key; the Alert status that records it."""
    if incident is None:
        return Alert.Status.IGNORED
    if action == "acknowledge":
        services.incident_acknowledge(incident=incident, by=None, via=VIA, now=now)
        return Alert.Status.ACKNOWLEDGED
    services.incident_resolve(incident=incident, by=None, via=VIA, now=now)
    return Alert.Status.RESOLVED


def _alert_record(
    *,
    integration: Integration,
    incident,
    now: datetime,
    action: str,
    dedup_key: str,
    status: str,
    summary: str,
    payload: dict,
) -> Alert:
    """The raw record of one received event, whatever it did."""
    return Alert.objects.create(
        integration=integration,
        incident=incident,
        received_at=now,
        action=action,
        dedup_key=dedup_key,
        status=status,
        summary=summary,
        payload=payload,
    )


@dataclass(frozen=True)
class ChangeResult:
    change: ChangeEvent


def change_event_build(*, integration: Integration, change: PagerDutyChange, now: datetime) -> ChangeEvent:
    """The (unsaved) timeline row of a change event; the inbox drain saves many at once."""
    return ChangeEvent(
        team_id=integration.team_id,
        integration=integration,
        summary=change.summary,
        source=change.source,
        timestamp=change.timestamp or now,
        links=change.links,
        custom_details=change.custom_details,
        received_at=now,
    )


@dataclass(frozen=True)
class AlertmanagerResult:
    dedup_key: str
    incident: Incident | None
    created: bool
    resolved: bool
    firing: int  # alerts of the incident still firing after this message


def alertmanager_process(*, integration: Integration, body: Any, now: datetime | None = None) -> AlertmanagerResult:
    """One incident per (receiver, groupKey); alerts tracked by fingerprint; resolved when all are."""
    now = now or timezone.now()
    message = alertmanager_parse(body)
    if not integration.enabled:
        raise EventInvalid(["This integration is disabled; enable it in Backstop to accept events"])
    return alertmanager_apply(integration=integration, message=message, now=now)


def alertmanager_apply(
    *, integration: Integration, message: AlertmanagerMessage, now: datetime, suppressed: bool | None = None
) -> AlertmanagerResult:
    """Apply one validated message of an accepted integration. `suppressed`: maintenance, if known."""
    dedup_key = message.dedup_key
    group = {
        "receiver": message.receiver,
        "groupKey": message.group_key,
        "groupLabels": message.group_labels,
        "commonLabels": message.common_labels,
        "commonAnnotations": message.common_annotations,
        "externalURL": message.external_url,
        "truncatedAlerts": message.truncated_alerts,
    }
    with transaction.atomic():
        incident = incidents_selectors.incident_open_get(team=integration.team, dedup_key=dedup_key)
        created = False
        firing = [a for a in message.alerts if a.status == "firing"]
        if firing:
            links = [{"href": message.external_url, "text": "Alertmanager"}] if message.external_url else []
            links += [
                {"href": a.generator_url, "text": a.labels.get("alertname", "Source")}
                for a in firing
                if a.generator_url
            ][:10]
            result, suppressed = _trigger(
                integration=integration,
                now=now,
                suppressed=suppressed,
                title=message.title,
                details=message.common_annotations.get("description", ""),
                severity=message.severity,
                urgency=urgency_of(rule=integration.urgency_rule, severity=message.severity),
                dedup_key=dedup_key,
                payload={
                    "integration": integration.pk,
                    "alertmanager": {
                        **group,
                        "alerts": [{"labels": a.labels, "annotations": a.annotations} for a in message.alerts],
                    },
                },
                links=links,
            )
            incident, created = result.incident, result.created
        suppressed = bool(suppressed)
        for alert in message.alerts:
            Alert.objects.create(
                integration=integration,
                incident=incident,
                received_at=now,
                action=Alert.Action.TRIGGER if alert.status == "firing" else Alert.Action.RESOLVE,
                dedup_key=dedup_key,
                fingerprint=alert.fingerprint,
                status=(
                    Alert.Status.SUPPRESSED
                    if suppressed
                    else Alert.Status.FIRING
                    if alert.status == "firing"
                    else Alert.Status.RESOLVED
                    if incident is not None
                    else Alert.Status.IGNORED
                ),
                summary=(alert.annotations.get("summary") or alert.labels.get("alertname") or message.title)[
                    :SUMMARY_MAX
                ],
                payload={**group, "alert": alert.raw},
            )
        if incident is None:
            # Resolved alerts for a group we have no open incident for: recorded, nothing to do.
            return AlertmanagerResult(dedup_key, None, False, False, 0)
        for alert in message.alerts:
            AlertGroupMember.objects.update_or_create(
                incident=incident,
                fingerprint=alert.fingerprint,
                defaults={
                    "status": alert.status,
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                    "starts_at": alert.starts_at,
                    "ends_at": alert.ends_at,
                    "updated_at": now,
                },
            )
        still_firing = AlertGroupMember.objects.filter(incident=incident, status=AlertGroupMember.Status.FIRING).count()
        # With truncated alerts we have not seen every member: trust only the group's own status.
        all_resolved = still_firing == 0 and (message.truncated_alerts == 0 or message.status == "resolved")
        resolved = False
        if all_resolved and incident.status != Incident.Status.RESOLVED:
            resolved = services.incident_resolve(
                incident=incident, by=None, via=VIA, now=now, note="All alerts of the group resolved"
            )
        return AlertmanagerResult(dedup_key, incident, created, resolved, still_firing)


@dataclass(frozen=True)
class GenericResult:
    dedup_key: str
    action: str
    incident: Incident | None
    created: bool


def generic_apply(
    *, integration: Integration, event: GenericEvent, dedup_key: str, now: datetime, suppressed: bool | None = None
) -> GenericResult:
    """Apply one validated generic event of an accepted integration."""
    with transaction.atomic():
        if event.action == "trigger":
            result, suppressed = _trigger(
                integration=integration,
                now=now,
                suppressed=suppressed,
                title=event.summary,
                details=event.details,
                severity=event.severity,
                urgency=urgency_of(rule=integration.urgency_rule, severity=event.severity, urgency=event.urgency),
                dedup_key=dedup_key,
                payload={"integration": integration.pk, "generic": event.raw},
            )
            _alert_record(
                integration=integration,
                incident=result.incident,
                now=now,
                action=Alert.Action.TRIGGER,
                dedup_key=dedup_key,
                status=Alert.Status.SUPPRESSED if suppressed else Alert.Status.FIRING,
                summary=event.summary,
                payload=event.raw,
            )
            return GenericResult(dedup_key, "trigger", result.incident, result.created)
        incident = incidents_selectors.incident_open_get(team=integration.team, dedup_key=dedup_key)
        status = action_apply(incident=incident, action=event.action, now=now)
        _alert_record(
            integration=integration,
            incident=incident,
            now=now,
            action=event.action,
            dedup_key=dedup_key,
            status=status,
            summary=event.summary,
            payload=event.raw,
        )
        return GenericResult(dedup_key, event.action, incident, False)
