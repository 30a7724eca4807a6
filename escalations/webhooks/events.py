"""Which incident changes become webhook events, and the JSON body receivers get.

`webhook_events_record` is the one entry from the incident timeline: it is called with timeline rows
just written, inside the transaction that wrote them, and writes the event and one pending delivery per
interested subscription in that same transaction. So an event exists exactly when its change committed,
and nothing is sent before the commit (the deliveries are published after it; the sweep finds them
anyway). Rows of kinds no subscription can ask for cost nothing; others one query when no subscription
of their teams is enabled.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from escalations.models import Incident, TimelineEvent, WebhookDelivery, WebhookEvent, WebhookSubscription
from escalations.webhooks import publish
from rotations.models import Team

Kind = TimelineEvent.Kind

# Retries stop this long after the event (or after "send again").
RETRY_WINDOW = timedelta(hours=24)

TRIGGERED = "incident.triggered"
ACKNOWLEDGED = "incident.acknowledged"
UNACKNOWLEDGED = "incident.unacknowledged"
ESCALATED = "incident.escalated"
REASSIGNED = "incident.reassigned"
ANNOTATED = "incident.annotated"
RESOLVED = "incident.resolved"
PAGE_FAILED = "incident.page_failed"
# Sent by "Send a test event" only; nobody subscribes to it.
PING = "webhook.ping"

# (type, what it means) — offered in the portal and documented in the API schema.
EVENT_TYPES: dict[str, str] = {
    TRIGGERED: "An incident was opened",
    ACKNOWLEDGED: "Someone acknowledged it",
    UNACKNOWLEDGED: "A new alert or call made an acknowledged incident escalate again",
    ESCALATED: "It reached a further escalation step (by the policy's timing or by hand)",
    REASSIGNED: "It was handed to other people",
    ANNOTATED: "A note was added",
    RESOLVED: "It was resolved",
    PAGE_FAILED: "A page (SMS, call, e-mail) could not be delivered, or a responder had no way to be paged",
}

EVENT_TYPE_CHOICES = list(EVENT_TYPES.items())

_TYPE_OF_KIND = {
    Kind.CREATED: TRIGGERED,
    Kind.ACKNOWLEDGED: ACKNOWLEDGED,
    Kind.RETRIGGERED: UNACKNOWLEDGED,
    Kind.REASSIGNED: REASSIGNED,
    Kind.NOTE: ANNOTATED,
    Kind.RESOLVED: RESOLVED,
    Kind.PAGE_FAILED: PAGE_FAILED,
}


def event_type_of(event: TimelineEvent) -> str | None:
    """The webhook event a timeline row stands for, if any. A step reached after the first (a later step
    or another round of the policy) is an escalation, whether the policy's delay or a person caused it:
    the manual "escalate" row is followed by that step row, so it is not an event of its own."""
    if event.kind == Kind.STEP_REACHED:
        data = event.data or {}
        return ESCALATED if data.get("step", 0) > 0 or data.get("loop", 0) > 0 else None
    if event.kind == Kind.PAGE_FAILED and (event.data or {}).get("temporary"):
        return None  # a failed attempt that delivery retries; the event is for a page that stays failed
    return _TYPE_OF_KIND.get(event.kind)  # type: ignore[call-overload]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def incident_body(incident: Incident, team: Team) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "type": "incident",
        "title": incident.title,
        "status": incident.status,
        "urgency": incident.urgency,
        "severity": incident.severity,
        "source": incident.source,
        "dedup_key": incident.dedup_key,
        "created_at": _iso(incident.created_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "resolved_at": _iso(incident.resolved_at),
        "team": {"id": team.pk, "slug": team.slug, "name": team.name},
        "html_url": settings.PUBLIC_BASE_URL + reverse("portal:incident", args=[incident.pk]),
    }


def event_body(*, public_id: str, type_: str, event: TimelineEvent, incident: Incident, team: Team) -> dict[str, Any]:
    """The JSON body (documented by escalations.api.webhooks.WebhookEventBodySerializer)."""
    actor = event.actor
    data: dict[str, Any] = {
        "incident": incident_body(incident, team),
        "agent": {"type": "user", "id": actor.pk, "name": actor.display_name} if actor is not None else None,
        "via": event.via,
        "message": event.message,
    }
    details = event.data or {}
    if type_ == ANNOTATED:
        data["note"] = {"id": event.pk, "content": event.message}
    elif type_ == ESCALATED:
        data["escalation"] = {
            "cycle": details.get("cycle", 0),
            "step": details.get("step", 0) + 1,
            "loop": details.get("loop", 0),
            "user_ids": list(details.get("user_ids", [])),
        }
    elif type_ == REASSIGNED:
        data["assignee_ids"] = list(details.get("user_ids", []))
    elif type_ == PAGE_FAILED:
        data["page"] = {
            "id": details.get("page_id"),
            "channel": details.get("channel"),
            "user_id": details.get("user_id"),
        }
    return {"id": public_id, "type": type_, "timestamp": _iso(event.at), "data": data}


def public_id_new() -> str:
    return "evt_" + uuid.uuid4().hex


def webhook_events_record(*, events: Sequence[TimelineEvent], now: datetime | None = None) -> list[int]:
    """Write the webhook events and pending deliveries for these saved timeline rows (call inside the
    transaction that wrote them); returns the new deliveries' ids, which are published after the commit."""
    typed = [(e, t) for e in events if (t := event_type_of(e)) is not None]
    if not typed:
        return []
    incidents = _incidents_of([e for e, _ in typed])
    team_ids = {i.team_id for i in incidents.values()}
    subscriptions: dict[int, list[WebhookSubscription]] = {}
    query = WebhookSubscription.objects.filter(team_id__in=team_ids, enabled=True).select_related("team")
    for sub in query.order_by("pk"):
        subscriptions.setdefault(sub.team_id, []).append(sub)
    if not subscriptions:
        return []
    now = now or timezone.now()
    planned: list[tuple[WebhookEvent, list[WebhookSubscription]]] = []
    for event, type_ in typed:
        incident = incidents[event.incident_id]
        wanted = [s for s in subscriptions.get(incident.team_id, []) if type_ in s.events]
        if not wanted:
            continue
        public_id = public_id_new()
        row = WebhookEvent(
            public_id=public_id,
            team_id=incident.team_id,
            type=type_,
            incident_id=incident.pk,
            timeline_event_id=event.pk,
            occurred_at=event.at,
            payload=event_body(public_id=public_id, type_=type_, event=event, incident=incident, team=wanted[0].team),
            created_at=now,
        )
        planned.append((row, wanted))
    if not planned:
        return []
    WebhookEvent.objects.bulk_create([row for row, _ in planned])
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                subscription=sub,
                event=row,
                next_attempt_at=now,
                retry_until=now + RETRY_WINDOW,
                created_at=now,
            )
            for row, wanted in planned
            for sub in wanted
        ]
    )
    ids = [d.pk for d in deliveries]
    # robust: a broker hiccup must not fail the committed change; the sweep sends what is due.
    transaction.on_commit(lambda: publish.deliveries_publish(ids), robust=True)
    return ids


def _incidents_of(events: Sequence[TimelineEvent]) -> dict[int, Incident]:
    """The incidents of these rows, as the callers hold them (fresh, under their lock) where they do."""
    found: dict[int, Incident] = {}
    missing: set[int] = set()
    for event in events:
        cached = TimelineEvent.incident.field.get_cached_value(event, default=None)
        if isinstance(cached, Incident):
            found[cached.pk] = cached
        else:
            missing.add(event.incident_id)
    missing -= set(found)
    if missing:
        found.update(Incident.objects.in_bulk(list(missing)))
    return found
