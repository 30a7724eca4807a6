"""Send a test event to an integration: the portal's "send a test event" button.

The event is built as its sender would build it, validated by the same parser as the HTTP endpoint
and stored by `inbox.inbox_accept`, then the drain is kicked: it becomes an incident (or an alert on
one) exactly as a real event of that integration would, a moment later. Its dedup key starts with
TEST_PREFIX so the page can find the Alert and incident it produced.

Heartbeat integrations take no events (their heartbeats ping instead), so they have no test event.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from escalations.intake import inbox, kick, parsers
from escalations.models import InboxEvent, Integration

TEST_PREFIX = "backstop-test-"
TEST_SUMMARY = "Test event from Backstop"
RECEIVER = "backstop"


def _alertmanager_body(*, dedup: str, summary: str, now: datetime) -> dict:
    labels = {"alertname": "BackstopTestEvent", "severity": "info"}
    return {
        "version": "4",
        "groupKey": dedup,
        "receiver": RECEIVER,
        "status": "firing",
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": "BackstopTestEvent"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": "",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": now.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": dedup[-16:],
            }
        ],
    }


def probe_dedup_key(*, integration: Integration, token: str) -> str:
    """The dedup key the test event's Alert row carries (Alertmanager's is receiver/groupKey)."""
    dedup = TEST_PREFIX + token
    return f"{RECEIVER}/{dedup}" if integration.kind == Integration.Kind.ALERTMANAGER else dedup


def integration_probe_send(*, integration: Integration, actor, now: datetime) -> str:
    """Store a test trigger for `integration` through the inbox; returns the token naming it
    (pass it to `probe_dedup_key`). ValidationError when the integration takes no events."""
    if integration.kind == Integration.Kind.HEARTBEAT:
        raise ValidationError("Heartbeat integrations take no events: ping one of the team's heartbeats instead.")
    if not integration.enabled:
        raise ValidationError("This integration is disabled: enable it first, or the test event is refused.")
    token = uuid.uuid4().hex
    dedup = TEST_PREFIX + token
    who = getattr(actor, "display_name", "") or "Backstop"
    summary = f"{TEST_SUMMARY} (sent by {who}): resolve me"
    kind = integration.kind
    action = "trigger"
    if kind == Integration.Kind.PAGERDUTY:
        body: dict = {
            "routing_key": integration.key,
            "event_action": "trigger",
            "dedup_key": dedup,
            "payload": {"summary": summary, "source": "backstop", "severity": "info"},
        }
        parsers.pagerduty_event_parse(body)
        inbox_kind = InboxEvent.Kind.PAGERDUTY
    elif kind == Integration.Kind.ALERTMANAGER:
        body = _alertmanager_body(dedup=dedup, summary=summary, now=now)
        message = parsers.alertmanager_parse(body)
        action, dedup = message.status, message.dedup_key
        inbox_kind = InboxEvent.Kind.ALERTMANAGER
    else:
        body = {"summary": summary, "severity": "info", "dedup_key": dedup, "action": "trigger"}
        parsers.generic_parse(body)
        inbox_kind = InboxEvent.Kind.GENERIC
    try:
        inbox.inbox_accept(
            key=integration.key,
            integration_kind=kind,
            kind=inbox_kind,
            action=action,
            dedup_key=dedup,
            payload=json.dumps(body),
            now=now,
        )
    except inbox.InboxRefused as exc:
        raise ValidationError(
            "The integration is disabled." if exc.reason == "disabled" else "The integration no longer exists."
        ) from None
    # Stored and committed already (autocommit); in a caller's transaction the kick waits for its commit.
    transaction.on_commit(kick.inbox_kick)
    return token
