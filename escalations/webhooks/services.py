"""Webhook subscription writes and "send again": the one write path for the API, the portal and the
admin. Keyword-only; each validates, writes and audits (rotations.audit) in one transaction.

The signing secret is returned on the subscription object by create and rotate, for the caller to show
once; it never goes into the audit log. URLs are checked against internal addresses here and again
before every delivery (escalations.webhooks.addresses).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from escalations.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from escalations.webhooks import publish, signing
from escalations.webhooks.addresses import UrlRefused, target_resolve
from escalations.webhooks.events import EVENT_TYPES, PING, RETRY_WINDOW, public_id_new
from rotations.audit import audit_record, diff
from rotations.models import AuditEntry, Team

MAX_SUBSCRIPTIONS_PER_TEAM = 10
# After a rotation the old secret keeps signing (next to the new one) this long.
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 200

Status = WebhookDelivery.Status


def _state(sub: WebhookSubscription) -> dict[str, Any]:
    return {"url": sub.url, "events": list(sub.events), "description": sub.description, "enabled": sub.enabled}


def url_check(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ValidationError({"url": ["Enter the URL that receives the events."]})
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError({"url": [f"Use at most {URL_MAX_LENGTH} characters."]})
    try:
        target_resolve(url, allow_private=settings.BACKSTOP_WEBHOOKS_ALLOW_PRIVATE)
    except UrlRefused as exc:
        raise ValidationError({"url": [str(exc)]}) from exc
    return url


def events_check(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events or []))
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise ValidationError({"events": [f"Unknown event type(s): {', '.join(map(str, unknown))}."]})
    if not chosen:
        raise ValidationError({"events": ["Choose at least one event."]})
    return [e for e in EVENT_TYPES if e in chosen]


def _description_check(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ValidationError({"description": [f"Use at most {DESCRIPTION_MAX_LENGTH} characters."]})
    return description


@transaction.atomic
def subscription_create(
    *, team: Team, url: str, events: Iterable[str], actor, description: str = "", enabled: bool = True
) -> WebhookSubscription:
    """A new subscription; its `secret` is for the caller to show once."""
    url = url_check(url)
    chosen = events_check(events)
    description = _description_check(description)
    # Lock the team row: two concurrent creates must not both pass the limit.
    Team.objects.select_for_update().filter(pk=team.pk).first()
    if WebhookSubscription.objects.filter(team=team).count() >= MAX_SUBSCRIPTIONS_PER_TEAM:
        raise ValidationError(f"{team} already has {MAX_SUBSCRIPTIONS_PER_TEAM} webhooks; delete one first.")
    sub = WebhookSubscription.objects.create(
        team=team,
        url=url,
        events=chosen,
        description=description,
        enabled=enabled,
        secret=signing.secret_new(),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    audit_record(actor=actor, team=team, action=AuditEntry.Action.CREATE, obj=sub, changes=diff({}, _state(sub)))
    return sub


@transaction.atomic
def subscription_update(
    *,
    subscription: WebhookSubscription,
    actor,
    url: str | None = None,
    events: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    now: datetime | None = None,
) -> WebhookSubscription:
    """Change what is given. Disabling ends the deliveries still waiting (failed, "send again" restarts one)."""
    now = now or timezone.now()
    sub = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    before = _state(sub)
    if url is not None and url.strip() != sub.url:
        sub.url = url_check(url)
    if events is not None:
        sub.events = events_check(events)
    if description is not None:
        sub.description = _description_check(description)
    if enabled is not None:
        sub.enabled = bool(enabled)
    sub.save()
    if before["enabled"] and not sub.enabled:
        WebhookDelivery.objects.filter(subscription=sub, status=Status.PENDING).update(
            status=Status.FAILED, next_attempt_at=None, error="The webhook was disabled."
        )
    changes = diff(before, _state(sub))
    if changes:
        audit_record(actor=actor, team=sub.team, action=AuditEntry.Action.UPDATE, obj=sub, changes=changes)
    return sub


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription, actor) -> None:
    audit_record(
        actor=actor,
        team=subscription.team,
        action=AuditEntry.Action.DELETE,
        obj=subscription,
        changes=diff(_state(subscription), {}),
    )
    subscription.delete()


@transaction.atomic
def subscription_secret_rotate(
    *, subscription: WebhookSubscription, actor, now: datetime | None = None
) -> WebhookSubscription:
    """A new signing secret (returned for the caller to show once). The old one keeps signing next to it
    for PREVIOUS_SECRET_GRACE, so the receiver can switch without refusing a delivery."""
    now = now or timezone.now()
    sub = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    sub.previous_secret = sub.secret
    sub.previous_secret_until = now + PREVIOUS_SECRET_GRACE
    sub.secret = signing.secret_new()
    sub.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    audit_record(
        actor=actor,
        team=sub.team,
        action=AuditEntry.Action.UPDATE,
        obj=sub,
        changes={"secret": ["(old secret)", "(new secret)"]},
    )
    return sub


@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery, actor, now: datetime | None = None) -> WebhookDelivery:
    """Send an event again to this subscription: the same id and body, a fresh signature, and retries
    for another day if the receiver fails. Refused while it is being sent or the webhook is disabled."""
    now = now or timezone.now()
    row = WebhookDelivery.objects.select_for_update().select_related("subscription", "event").get(pk=delivery.pk)
    if not row.subscription.enabled:
        raise ValidationError("The webhook is disabled; enable it before sending again.")
    if row.status == Status.SENDING:
        raise ValidationError("It is being sent right now.")
    before = {"status": row.status}
    row.status = Status.PENDING
    row.next_attempt_at = now
    row.retry_until = now + RETRY_WINDOW
    row.save(update_fields=["status", "next_attempt_at", "retry_until"])
    audit_record(
        actor=actor,
        team=row.subscription.team,
        action=AuditEntry.Action.UPDATE,
        obj=row.subscription,
        changes={"resent": [None, row.event.public_id], **diff(before, {"status": row.status})},
    )
    ids = [row.pk]
    transaction.on_commit(lambda: publish.deliveries_publish(ids), robust=True)
    return row


@transaction.atomic
def subscription_ping(*, subscription: WebhookSubscription, actor, now: datetime | None = None) -> WebhookDelivery:
    """A `webhook.ping` event to this subscription only, signed and logged like any other: what a manager
    sends to check a new receiver and its signature check."""
    now = now or timezone.now()
    if not subscription.enabled:
        raise ValidationError("The webhook is disabled; enable it before sending a test event.")
    public_id = public_id_new()
    name = actor.display_name if actor is not None and actor.is_authenticated else "Backstop"
    event = WebhookEvent.objects.create(
        public_id=public_id,
        team=subscription.team,
        type=PING,
        occurred_at=now,
        payload={
            "id": public_id,
            "type": PING,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "data": {
                "subscription": {"id": subscription.pk, "url": subscription.url},
                "message": f"A test event sent by {name}.",
            },
        },
        created_at=now,
    )
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event=event, next_attempt_at=now, retry_until=now + RETRY_WINDOW, created_at=now
    )
    ids = [delivery.pk]
    transaction.on_commit(lambda: publish.deliveries_publish(ids), robust=True)
    return delivery


def webhook_events_purge(*, before: datetime) -> int:
    """Delete events (and their deliveries) created before `before` that nothing is still sending."""
    busy = WebhookDelivery.objects.filter(status__in=[Status.PENDING, Status.SENDING]).values("event_id")
    deleted, _ = WebhookEvent.objects.filter(created_at__lt=before).exclude(pk__in=busy).delete()
    return deleted
