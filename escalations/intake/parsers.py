"""Parsing alert payloads (PagerDuty Events v2, Alertmanager, generic JSON) into plain values. Pure: no Django."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

INTEGRATION_KEY_LENGTH = 32  # hex characters of an integration key or heartbeat token
SUMMARY_MAX = 1024


DEDUP_KEY_MAX = 255


SOURCE_MAX = 255


SEVERITIES = ("critical", "error", "warning", "info")


ACTIONS = ("trigger", "acknowledge", "resolve")


URGENCIES = ("high", "low")


# An integration's urgency rule (Integration.urgency_rule): map the event's severity, or a fixed urgency.
URGENCY_RULES = ("severity", "always_high", "always_low")


# PagerDuty's default service setting: warning and info are low urgency, anything worse is high.
LOW_URGENCY_SEVERITIES = frozenset({"warning", "info"})


def urgency_of(*, rule: str, severity: str, urgency: str = "") -> str:
    """The urgency an alert opens (or raises) its incident with.

    A fixed rule wins; otherwise an explicit `urgency` the sender gave, else the severity: warning
    and info are low, anything else (critical, error, unknown) high, so an odd value never silences.
    """
    if rule == "always_high":
        return "high"
    if rule == "always_low":
        return "low"
    if urgency in URGENCIES:
        return urgency
    return "low" if severity in LOW_URGENCY_SEVERITIES else "high"


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


def pagerduty_links(event: PagerDutyEvent) -> list[dict]:
    links = list(event.links)
    if event.client_url:
        links.append({"href": event.client_url, "text": event.client or "Source"})
    return links


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


# --- Generic webhook -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GenericEvent:
    action: str
    summary: str
    details: str
    severity: str
    dedup_key: str
    raw: dict
    urgency: str = ""  # "" when the sender gave none: the severity decides


def generic_parse(data: Any) -> GenericEvent:
    """`{summary, details, severity, urgency, dedup_key, action}`; `data` is parsed JSON or a form as a dict."""
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
    urgency = data.get("urgency") or ""
    if urgency and urgency not in URGENCIES:
        errors.append("'urgency' must be high or low")
    if errors:
        raise EventInvalid(errors)
    return GenericEvent(action, summary, details, severity, dedup_key, data, urgency)


# --- Opsgenie Alert API v2 ----------------------------------------------------------------------

OPSGENIE_MESSAGE_MAX = 130
OPSGENIE_ALIAS_MAX = 512
OPSGENIE_DESCRIPTION_MAX = 15_000
OPSGENIE_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
# Under the integration's "severity" urgency rule, P1-P2 page with high urgency and P3-P5 with low
# (warning and info are the low-urgency severities of `urgency_of`).
OPSGENIE_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info", "P5": "info"}
OPSGENIE_ACTIONS = {"close": "resolve", "acknowledge": "acknowledge", "notes": "note"}
OPSGENIE_IDENTIFIER_TYPES = ("id", "alias", "tiny")


@dataclass(frozen=True)
class OpsgenieAlert:
    message: str
    alias: str  # "" when the sender gave none (a new alert each time)
    description: str
    priority: str
    tags: tuple[str, ...]
    details: dict[str, str]
    entity: str
    source: str
    user: str
    note: str

    @property
    def severity(self) -> str:
        return OPSGENIE_SEVERITY[self.priority]


@dataclass(frozen=True)
class OpsgenieAction:
    action: str  # resolve, acknowledge or note
    identifier: str
    identifier_type: str  # id, alias or tiny
    user: str
    source: str
    note: str


def opsgenie_dedup_key(alias: str) -> str:
    """The incident dedup key of an Opsgenie alias: the alias itself, or a hash of it when it is longer
    than our dedup keys (Opsgenie allows 512 characters)."""
    if len(alias) <= DEDUP_KEY_MAX:
        return alias
    return "opsgenie:" + hashlib.sha256(alias.encode()).hexdigest()


def _opsgenie_text(body: Mapping, key: str, errors: list[str], *, max_len: int, truncate: bool = False) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f"{key} must be a string")
        return ""
    if len(value) > max_len:
        if truncate:
            return value[:max_len]
        errors.append(f"{key} can not be longer than {max_len} characters")
        return ""
    return value


def opsgenie_alert_parse(body: Any) -> OpsgenieAlert:
    """Validate a `POST v2/alerts` body completely. Responders, visibleTo and actions are accepted and
    ignored: who is paged is decided by the integration's escalation policy."""
    if not isinstance(body, dict):
        raise EventInvalid(["Request body must be a JSON object"], message="Request body is not valid")
    errors: list[str] = []
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        errors.append("Message can not be empty")
        message = ""
    alias = _opsgenie_text(body, "alias", errors, max_len=OPSGENIE_ALIAS_MAX)
    description = _opsgenie_text(body, "description", errors, max_len=OPSGENIE_DESCRIPTION_MAX, truncate=True)
    if len(message) > OPSGENIE_MESSAGE_MAX:
        # Opsgenie cuts a long message rather than refuse the alert; a refused alert is a lost page.
        # The whole message is kept at the top of the description.
        description = f"{message}\n\n{description}".strip()[:OPSGENIE_DESCRIPTION_MAX]
        message = message[:OPSGENIE_MESSAGE_MAX]
    priority = body.get("priority")
    if priority is None or priority == "":
        priority = "P3"
    elif priority not in OPSGENIE_PRIORITIES:
        errors.append("Priority should be one of [P1, P2, P3, P4, P5]")
        priority = "P3"
    tags = body.get("tags")
    if tags is None:
        tags = []
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append("tags must be an array of strings")
        tags = []
    details = body.get("details")
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        errors.append("details must be an object")
        details = {}
    entity = _opsgenie_text(body, "entity", errors, max_len=512, truncate=True)
    source = _opsgenie_text(body, "source", errors, max_len=100, truncate=True)
    user = _opsgenie_text(body, "user", errors, max_len=100, truncate=True)
    note = _opsgenie_text(body, "note", errors, max_len=25_000, truncate=True)
    if errors:
        raise EventInvalid(errors, message=errors[0])
    return OpsgenieAlert(
        message=message,
        alias=alias,
        description=description,
        priority=priority,
        tags=tuple(tags),
        details={str(k): v if isinstance(v, str) else json.dumps(v) for k, v in details.items()},
        entity=entity,
        source=source,
        user=user,
        note=note,
    )


def opsgenie_action_parse(*, verb: str, identifier: str, identifier_type: str | None, body: Any) -> OpsgenieAction:
    """Validate `POST v2/alerts/{identifier}/{close|acknowledge|notes}?identifierType=…` (body may be
    empty for close and acknowledge; notes need a note)."""
    errors: list[str] = []
    action = OPSGENIE_ACTIONS.get(verb)
    if action is None:
        errors.append(f"Unknown alert action {verb!r}")
    identifier_type = identifier_type or "id"
    if identifier_type not in OPSGENIE_IDENTIFIER_TYPES:
        errors.append("identifierType should be one of [id, alias, tiny]")
    if not identifier.strip():
        errors.append("Identifier can not be empty")
    elif len(identifier) > OPSGENIE_ALIAS_MAX:
        errors.append(f"Identifier can not be longer than {OPSGENIE_ALIAS_MAX} characters")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise EventInvalid(["Request body must be a JSON object"], message="Request body is not valid")
    user = _opsgenie_text(body, "user", errors, max_len=100, truncate=True)
    source = _opsgenie_text(body, "source", errors, max_len=100, truncate=True)
    note = _opsgenie_text(body, "note", errors, max_len=25_000, truncate=True)
    if action == "note" and not note.strip():
        errors.append("Note can not be empty")
    if errors:
        raise EventInvalid(errors, message=errors[0])
    return OpsgenieAction(action or "", identifier, identifier_type, user, source, note)


def opsgenie_details(alert: OpsgenieAlert) -> str:
    """The incident's details text: description, then what else the sender told us."""
    lines = [alert.description] if alert.description else []
    for label, value in (("Entity", alert.entity), ("Source", alert.source), ("Priority", alert.priority)):
        if value:
            lines.append(f"{label}: {value}")
    if alert.tags:
        lines.append("Tags: " + ", ".join(alert.tags))
    for key in sorted(alert.details):
        lines.append(f"{key}: {alert.details[key]}")
    return "\n".join(lines)


def opsgenie_note_text(*, note: str, user: str, source: str) -> str:
    """A note as the timeline shows it, naming who sent it (a free-text name, not a Backstop user)."""
    by = " via ".join(p for p in (user, source) if p)
    return f"{note} ({by})" if by else note


def throttle_key_is_plausible(key: str) -> bool:
    """Only count keys that could exist, so junk keys cannot fill the cache."""
    return bool(re.fullmatch(r"[A-Za-z0-9]{32}", key or ""))
