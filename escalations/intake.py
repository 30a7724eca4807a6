"""Alert intake: turn PagerDuty Events API v2, Alertmanager webhook v4, generic webhook and heartbeat
events into calls of the incident services.

No HTTP here. Every event is parsed and validated COMPLETELY, in pure Python, into frozen dataclasses
before anything is written: the web views do that, then store the event in the inbox
(`escalations.inbox`), so a malformed event stores nothing. The `*_apply` functions apply one
validated event in one transaction (the inbox drain uses them, and the `*_process` functions that
parse and apply at once); escalation is not done here: the incident services enqueue the engine on
commit.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from escalations.models import (
    Alert,
    AlertGroupMember,
    ChangeEvent,
    Heartbeat,
    Incident,
    Integration,
    MaintenanceWindow,
    TimelineEvent,
)
from escalations.models.intake import INTEGRATION_KEY_LENGTH

__all__ = [
    "AlertmanagerAlert",
    "AlertmanagerMessage",
    "AlertmanagerResult",
    "ChangeResult",
    "EventInvalid",
    "GenericEvent",
    "GenericResult",
    "PagerDutyChange",
    "PagerDutyEvent",
    "PagerDutyResult",
    "action_apply",
    "alertmanager_apply",
    "alertmanager_parse",
    "alertmanager_process",
    "change_event_build",
    "generic_apply",
    "generic_parse",
    "heartbeat_ping",
    "heartbeats_check",
    "maintenance_active",
    "pagerduty_apply",
    "pagerduty_change_parse",
    "pagerduty_details",
    "pagerduty_event_parse",
    "pagerduty_event_process",
    "pagerduty_links",
    "routing_key_errors",
    "summary_of",
]

SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
SOURCE_MAX = 255
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
VIA = TimelineEvent.Via.INTEGRATION

# Alertmanager users put anything in labels.severity; map the common vocabularies onto ours.
ALERTMANAGER_SEVERITY = {
    "critical": "critical",
    "crit": "critical",
    "page": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "high": "error",
    "error": "error",
    "major": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "minor": "warning",
    "info": "info",
    "informational": "info",
    "low": "info",
    "none": "info",
}
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # lower = worse
ALERTMANAGER_ZERO_TIME = "0001-01-01T00:00:00Z"


class EventInvalid(Exception):
    """The event cannot be accepted. `errors` are short human-readable reasons; nothing was stored."""

    def __init__(self, errors: list[str], message: str = "Event object is invalid") -> None:
        super().__init__(message)
        self.errors = errors
        self.message = message


# --- small validators (collect errors, never raise midway) --------------------------------------


def _str(obj: Mapping, key: str, errors: list[str], *, name: str, required: bool, max_len: int) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            errors.append(f"'{name}' is missing or blank")
        return ""
    if not isinstance(value, str):
        errors.append(f"'{name}' must be a string")
        return ""
    if required and not value.strip():
        errors.append(f"'{name}' is missing or blank")
        return ""
    if len(value) > max_len:
        errors.append(f"'{name}' is too long (maximum {max_len} characters)")
        return ""
    return value


def _timestamp(value: Any, errors: list[str], *, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(f"'{name}' must be an ISO 8601 timestamp string")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.append(f"'{name}' is not a valid ISO 8601 timestamp")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _links(value: Any, errors: list[str], *, name: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"'{name}' must be an array")
        return []
    out = []
    for i, link in enumerate(value):
        if not isinstance(link, dict) or not isinstance(link.get("href"), str) or not link["href"]:
            errors.append(f"'{name}[{i}].href' is missing or not a string")
            continue
        text = link.get("text", "")
        if not isinstance(text, str):
            errors.append(f"'{name}[{i}].text' must be a string")
            continue
        out.append({"href": link["href"], "text": text})
    return out


def _images(value: Any, errors: list[str]) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append("'images' must be an array")
        return []
    out = []
    for i, image in enumerate(value):
        if not isinstance(image, dict) or not isinstance(image.get("src"), str) or not image["src"]:
            errors.append(f"'images[{i}].src' is missing or not a string")
            continue
        if any(k in image and not isinstance(image[k], str) for k in ("href", "alt")):
            errors.append(f"'images[{i}]' href and alt must be strings")
            continue
        out.append({k: image[k] for k in ("src", "href", "alt") if k in image})
    return out


def routing_key_errors(key: Any) -> list[str]:
    """PagerDuty's own checks (and wording) on a routing key's shape."""
    if key is None or key == "":
        return ["'routing_key' is missing or blank"]
    if not isinstance(key, str):
        return ["'routing_key' must be a string"]
    errors = []
    if len(key) != INTEGRATION_KEY_LENGTH:
        errors.append(f"Length of 'routing_key' is incorrect (should be {INTEGRATION_KEY_LENGTH} characters)")
    if not key.isascii() or not key.isalnum():
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    return errors


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


def _services():
    # Imported lazily: intake parsing must import (and be tested) without the incident services.
    from escalations import services

    return services


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
    result = _services().incident_trigger(
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


# --- PagerDuty Events API v2 ---------------------------------------------------------------------


@dataclass(frozen=True)
class PagerDutyEvent:
    routing_key: str
    action: str
    dedup_key: str  # "" when a trigger did not send one (the processor generates one)
    summary: str = ""
    source: str = ""
    severity: str = ""
    timestamp: datetime | None = None
    component: str = ""
    group: str = ""
    class_: str = ""
    custom_details: Any = None
    links: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    client: str = ""
    client_url: str = ""


@dataclass(frozen=True)
class PagerDutyResult:
    dedup_key: str
    action: str
    incident: Incident | None  # None: acknowledge/resolve for a key with no open incident (a no-op)
    created: bool
    suppressed: bool = False


def pagerduty_event_parse(body: Any) -> PagerDutyEvent:
    """Validate an Events API v2 event completely. Raises EventInvalid with every problem found."""
    if not isinstance(body, dict):
        raise EventInvalid(["Event object must be a JSON object"])
    errors: list[str] = []
    errors += routing_key_errors(body.get("routing_key"))
    action = body.get("event_action")
    if action is None or action == "":
        errors.append("'event_action' is missing or blank")
    elif action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup_key = _str(
        body,
        "dedup_key",
        errors,
        name="dedup_key",
        required=action in ("acknowledge", "resolve"),
        max_len=DEDUP_KEY_MAX,
    )
    client = _str(body, "client", errors, name="client", required=False, max_len=255)
    client_url = _str(body, "client_url", errors, name="client_url", required=False, max_len=2048)
    if action != "trigger":
        # PagerDuty ignores the payload of acknowledge/resolve; Alertmanager sends a full one anyway.
        if errors:
            raise EventInvalid(errors)
        return PagerDutyEvent(
            routing_key=body["routing_key"], action=action, dedup_key=dedup_key, client=client, client_url=client_url
        )

    payload = body.get("payload")
    if not isinstance(payload, dict):
        errors.append("'payload' is missing or not an object")
        payload = {}
    summary = _str(payload, "summary", errors, name="payload.summary", required=True, max_len=SUMMARY_MAX)
    source = _str(payload, "source", errors, name="payload.source", required=True, max_len=SOURCE_MAX)
    severity = payload.get("severity")
    if severity is None or severity == "":
        errors.append("'payload.severity' is missing or blank")
    elif severity not in SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
    timestamp = _timestamp(payload.get("timestamp"), errors, name="payload.timestamp")
    component = _str(payload, "component", errors, name="payload.component", required=False, max_len=255)
    group = _str(payload, "group", errors, name="payload.group", required=False, max_len=255)
    class_ = _str(payload, "class", errors, name="payload.class", required=False, max_len=255)
    links = _links(body.get("links"), errors, name="links")
    images = _images(body.get("images"), errors)
    if errors:
        raise EventInvalid(errors)
    return PagerDutyEvent(
        routing_key=body["routing_key"],
        action="trigger",
        dedup_key=dedup_key,
        summary=summary,
        source=source,
        severity=severity,
        timestamp=timestamp,
        component=component,
        group=group,
        class_=class_,
        custom_details=payload.get("custom_details"),
        links=links,
        images=images,
        client=client,
        client_url=client_url,
    )


def pagerduty_details(event: PagerDutyEvent) -> str:
    lines = [f"Source: {event.source}"]
    for label, value in (("Component", event.component), ("Group", event.group), ("Class", event.class_)):
        if value:
            lines.append(f"{label}: {value}")
    if event.custom_details not in (None, "", {}):
        details = event.custom_details
        lines.append(details if isinstance(details, str) else json.dumps(details, indent=2, sort_keys=True))
    return "\n".join(lines)


def pagerduty_event_process(*, integration_key: str | None, body: Any, now: datetime | None = None) -> PagerDutyResult:
    """Events API v2 semantics, applied at once. `integration_key` overrides body["routing_key"] when given.

    HTTP intake does not call this: it stores the validated event in the inbox and the drain applies
    it (`escalations.inbox`) with the same `pagerduty_apply`.
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


def pagerduty_links(event: PagerDutyEvent) -> list[dict]:
    links = list(event.links)
    if event.client_url:
        links.append({"href": event.client_url, "text": event.client or "Source"})
    return links


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

        services = _services()
        incident = services.incident_open_get(team=integration.team, dedup_key=dedup_key)
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
    services = _services()
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


def summary_of(raw: dict) -> str:
    payload = raw.get("payload")
    summary = payload.get("summary") if isinstance(payload, dict) else None
    return summary[:SUMMARY_MAX] if isinstance(summary, str) else ""


@dataclass(frozen=True)
class PagerDutyChange:
    routing_key: str
    summary: str
    source: str
    timestamp: datetime | None
    custom_details: Any
    links: list[dict]


@dataclass(frozen=True)
class ChangeResult:
    change: ChangeEvent


def pagerduty_change_parse(body: Any) -> PagerDutyChange:
    if not isinstance(body, dict):
        raise EventInvalid(["Event object must be a JSON object"])
    errors = routing_key_errors(body.get("routing_key"))
    payload = body.get("payload")
    if not isinstance(payload, dict):
        errors.append("'payload' is missing or not an object")
        payload = {}
    summary = _str(payload, "summary", errors, name="payload.summary", required=True, max_len=SUMMARY_MAX)
    source = _str(payload, "source", errors, name="payload.source", required=False, max_len=SOURCE_MAX)
    timestamp = _timestamp(payload.get("timestamp"), errors, name="payload.timestamp")
    custom_details = payload.get("custom_details")
    if custom_details is not None and not isinstance(custom_details, dict):
        errors.append("'payload.custom_details' must be an object")
    links = _links(body.get("links"), errors, name="links")
    if errors:
        raise EventInvalid(errors)
    return PagerDutyChange(body["routing_key"], summary, source, timestamp, custom_details or {}, links)


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


# --- Prometheus Alertmanager webhook v4 ----------------------------------------------------------


@dataclass(frozen=True)
class AlertmanagerAlert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None  # None while firing (Alertmanager sends the zero time)
    generator_url: str
    fingerprint: str
    raw: dict


@dataclass(frozen=True)
class AlertmanagerMessage:
    version: str
    group_key: str
    truncated_alerts: int
    status: str
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[AlertmanagerAlert, ...]

    @property
    def dedup_key(self) -> str:
        key = f"{self.receiver}/{self.group_key}"
        if len(key) <= DEDUP_KEY_MAX:
            return key
        return "alertmanager:" + hashlib.sha256(key.encode()).hexdigest()

    @property
    def title(self) -> str:
        title = (
            self.common_annotations.get("summary")
            or self.common_labels.get("alertname")
            or self.group_labels.get("alertname")
            or next((a.labels["alertname"] for a in self.alerts if a.labels.get("alertname")), "")
            or f"Alertmanager group {self.group_key}"
        )
        return title[:SUMMARY_MAX]

    @property
    def severity(self) -> str:
        raw = self.common_labels.get("severity")
        if raw is None:
            mapped = [ALERTMANAGER_SEVERITY.get(a.labels.get("severity", "").lower()) for a in self.alerts]
            mapped = [m for m in mapped if m]
            return min(mapped, key=SEVERITY_RANK.__getitem__) if mapped else "error"
        return ALERTMANAGER_SEVERITY.get(raw.lower(), "error")


def _str_map(value: Any, errors: list[str], *, name: str, required: bool = False) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        errors.append(f"'{name}' must be an object of strings")
        return {}
    return value


def alertmanager_parse(body: Any) -> AlertmanagerMessage:
    if not isinstance(body, dict):
        raise EventInvalid(["Webhook body must be a JSON object"], message="Alertmanager payload is invalid")
    errors: list[str] = []
    version = body.get("version")
    if version != "4":
        errors.append("'version' must be \"4\" (Alertmanager webhook payload version 4)")
    group_key = _str(body, "groupKey", errors, name="groupKey", required=True, max_len=10_000)
    receiver = _str(body, "receiver", errors, name="receiver", required=False, max_len=255)
    status = body.get("status")
    if status not in ("firing", "resolved"):
        errors.append("'status' must be firing or resolved")
    truncated = body.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        errors.append("'truncatedAlerts' must be a non-negative integer")
        truncated = 0
    group_labels = _str_map(body.get("groupLabels"), errors, name="groupLabels")
    common_labels = _str_map(body.get("commonLabels"), errors, name="commonLabels")
    common_annotations = _str_map(body.get("commonAnnotations"), errors, name="commonAnnotations")
    external_url = _str(body, "externalURL", errors, name="externalURL", required=False, max_len=2048)
    raw_alerts = body.get("alerts")
    alerts: list[AlertmanagerAlert] = []
    if not isinstance(raw_alerts, list) or not raw_alerts:
        errors.append("'alerts' must be a non-empty array")
        raw_alerts = []
    for i, item in enumerate(raw_alerts):
        name = f"alerts[{i}]"
        if not isinstance(item, dict):
            errors.append(f"'{name}' must be an object")
            continue
        a_status = item.get("status")
        if a_status not in ("firing", "resolved"):
            errors.append(f"'{name}.status' must be firing or resolved")
        labels = _str_map(item.get("labels"), errors, name=f"{name}.labels", required=True)
        annotations = _str_map(item.get("annotations"), errors, name=f"{name}.annotations")
        starts_at = _timestamp(item.get("startsAt"), errors, name=f"{name}.startsAt")
        ends_raw = item.get("endsAt")
        ends_at = None if ends_raw == ALERTMANAGER_ZERO_TIME else _timestamp(ends_raw, errors, name=f"{name}.endsAt")
        if ends_at is not None and ends_at.year <= 1:
            ends_at = None
        generator_url = _str(item, "generatorURL", errors, name=f"{name}.generatorURL", required=False, max_len=2048)
        fingerprint = _str(item, "fingerprint", errors, name=f"{name}.fingerprint", required=False, max_len=255)
        if not fingerprint:
            # Older senders omit it; Alertmanager's fingerprint is a hash of the label set too.
            fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
        alerts.append(
            AlertmanagerAlert(a_status, labels, annotations, starts_at, ends_at, generator_url, fingerprint, item)
        )
    if errors:
        raise EventInvalid(errors, message="Alertmanager payload is invalid")
    return AlertmanagerMessage(
        version=version,
        group_key=group_key,
        truncated_alerts=truncated,
        status=status,
        receiver=receiver,
        group_labels=group_labels,
        common_labels=common_labels,
        common_annotations=common_annotations,
        external_url=external_url,
        alerts=tuple(alerts),
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
    services = _services()
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
        incident = services.incident_open_get(team=integration.team, dedup_key=dedup_key)
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


# --- Generic webhook -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GenericEvent:
    action: str
    summary: str
    details: str
    severity: str
    dedup_key: str
    raw: dict


@dataclass(frozen=True)
class GenericResult:
    dedup_key: str
    action: str
    incident: Incident | None
    created: bool


def generic_parse(data: Any) -> GenericEvent:
    """`{summary, details, severity, dedup_key, action}`; `data` is parsed JSON or a form as a dict."""
    if not isinstance(data, dict):
        raise EventInvalid(["Body must be a JSON object or a form"])
    errors: list[str] = []
    action = data.get("action") or "trigger"
    if action not in ACTIONS:
        errors.append("'action' must be one of trigger, acknowledge, resolve")
    dedup_key = _str(data, "dedup_key", errors, name="dedup_key", required=action != "trigger", max_len=DEDUP_KEY_MAX)
    summary = _str(data, "summary", errors, name="summary", required=action == "trigger", max_len=SUMMARY_MAX)
    details = data.get("details", "")
    if details is None:
        details = ""
    elif not isinstance(details, str):
        details = json.dumps(details, indent=2, sort_keys=True)
    severity = data.get("severity") or "error"
    if severity not in SEVERITIES:
        errors.append("'severity' must be one of critical, error, warning, info")
    if errors:
        raise EventInvalid(errors)
    return GenericEvent(action, summary, details, severity, dedup_key, data)


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
        incident = _services().incident_open_get(team=integration.team, dedup_key=dedup_key)
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


# --- Heartbeats ----------------------------------------------------------------------------------


def _heartbeat_dedup_key(heartbeat: Heartbeat) -> str:
    return f"heartbeat:{heartbeat.pk}"


def heartbeat_ping(*, heartbeat: Heartbeat, now: datetime | None = None) -> bool:
    """Record a ping; resolves the open missed-heartbeat incident. Returns True if it was down."""
    now = now or timezone.now()
    with transaction.atomic():
        hb = Heartbeat.objects.select_for_update(of=("self",)).select_related("open_incident").get(pk=heartbeat.pk)
        was_down = hb.state == Heartbeat.State.DOWN
        incident = hb.open_incident
        if incident is not None and incident.status != Incident.Status.RESOLVED:
            _services().incident_resolve(incident=incident, by=None, via=VIA, now=now, note="Heartbeat received again")
        if hb.last_ping_at is None or now > hb.last_ping_at:
            hb.last_ping_at = now
        hb.state = Heartbeat.State.UP
        hb.open_incident = None
        hb.save(update_fields=["last_ping_at", "state", "open_incident"])
    heartbeat.refresh_from_db()
    return was_down


def heartbeats_check(*, now: datetime | None = None) -> list[Incident]:
    """Open one incident per overdue heartbeat. Idempotent: a heartbeat that is down stays down
    (and is skipped) until it pings again; concurrent runs skip each other's locked rows."""
    now = now or timezone.now()
    opened: list[Incident] = []
    candidates = Heartbeat.objects.filter(enabled=True, state=Heartbeat.State.UP).values_list(
        "pk", "last_ping_at", "created_at", "interval", "grace"
    )
    overdue = [pk for pk, last, created, interval, grace in candidates if (last or created) + interval + grace < now]
    for pk in overdue:
        with transaction.atomic():
            hb = (
                Heartbeat.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("team", "integration__policy")
                .filter(pk=pk, enabled=True, state=Heartbeat.State.UP)
                .first()
            )
            if hb is None or (hb.last_ping_at or hb.created_at) + hb.interval + hb.grace >= now:
                continue
            last = hb.last_ping_at.isoformat() if hb.last_ping_at else "never"
            result = _services().incident_trigger(
                team=hb.team,
                title=f"Missed heartbeat: {hb.name}",
                details=f"No ping since {last}; expected every {hb.interval} (grace {hb.grace}).",
                severity=Incident.Severity.CRITICAL,
                source=Incident.Source.HEARTBEAT,
                dedup_key=_heartbeat_dedup_key(hb),
                payload={"heartbeat": hb.pk, "last_ping_at": last},
                policy=hb.integration.policy if hb.integration else None,
                suppressed=maintenance_active(team=hb.team, integration=hb.integration, now=now),
                via=TimelineEvent.Via.SYSTEM,
                now=now,
            )
            hb.state = Heartbeat.State.DOWN
            hb.open_incident = result.incident
            hb.save(update_fields=["state", "open_incident"])
            opened.append(result.incident)
    return opened


def throttle_key_is_plausible(key: str) -> bool:
    """Only count keys that could exist, so junk keys cannot fill the cache."""
    return bool(re.fullmatch(r"[A-Za-z0-9]{32}", key or ""))
