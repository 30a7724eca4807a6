"""Sending webhook deliveries: claim → POST (outside any transaction) → record.

Guarantees:
- Every event reaches each subscription that wanted it, or its delivery ends `failed` after retrying
  with backoff for `RETRY_WINDOW` (a day): state lives in the delivery rows, and the sweep claims
  whatever is due, so a lost message, a dead worker or a restarted broker delays a delivery, never loses it.
- A delivery the receiver answered with 2xx is never sent again by Backstop on its own (only "send
  again" does), and two workers never send the same delivery at once: a claim is a conditional
  `UPDATE` of pending rows (status → sending), and the outcome is recorded only under that claim.
  A worker that dies after the POST leaves the row `sending`; the sweep retries it after
  `STUCK_AFTER`, so that receiver may see the id twice — which is why receivers deduplicate by id.
- Nothing is sent inside a database transaction.
- When a receiver answers 2xx again, its other deliveries waiting out a backoff become due at once:
  a receiver back from an outage gets the backlog now, not at each delivery's next retry.
"""

from __future__ import annotations

import json
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from escalations.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from escalations.webhooks import publish, signing
from escalations.webhooks.send import Outcome, webhook_post

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status

# Delays after the 1st, 2nd, … failed attempt; the last repeats until the retry window closes.
BACKOFF = [
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(minutes=10),
    timedelta(minutes=20),
    timedelta(minutes=40),
    timedelta(hours=1),
]
JITTER = 0.2  # ± this share of each delay, so deliveries that failed together do not retry in lockstep
# A claim older than this is taken to be a worker that died mid-send (the POST takes at most 15 s).
STUCK_AFTER = timedelta(minutes=2)
SEND_THREADS = 8


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after `attempts` failed attempts (≥ 1), jittered."""
    base = BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return base * factor


def _secrets(subscription: WebhookSubscription, now: datetime) -> list[str]:
    keys = [subscription.secret]
    until = subscription.previous_secret_until
    if subscription.previous_secret and until is not None and until > now:
        keys.append(subscription.previous_secret)
    return keys


def delivery_request(delivery: WebhookDelivery, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and the signed headers of one attempt (the timestamp is the attempt's)."""
    event: WebhookEvent = delivery.event
    body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signing.headers(
        secrets_=_secrets(delivery.subscription, now),
        msg_id=event.public_id,
        timestamp=int(now.timestamp()),
        body=body,
    )
    return body, headers


def _attempt(delivery: WebhookDelivery, now: datetime) -> Outcome:
    body, headers = delivery_request(delivery, now)
    try:
        return webhook_post(
            url=delivery.subscription.url,
            body=body,
            headers=headers,
            allow_private=settings.BACKSTOP_WEBHOOKS_ALLOW_PRIVATE,
        )
    except RuntimeError:
        raise
    except Exception as exc:  # anything the receiver does must end as a recorded failure, never a crash
        logger.exception("webhook delivery %s failed unexpectedly", delivery.pk)
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])


# ------------------------------------------------------------------------------------------ claim


def _claim(query, now: datetime, limit: int | None = None) -> list[int]:
    """Mark these pending rows `sending` under a claim at `now`, in one short transaction."""
    with transaction.atomic():
        locked = query.select_for_update(skip_locked=True, of=("self",)).order_by("next_attempt_at", "pk")
        ids = list(locked.values_list("pk", flat=True)[:limit] if limit else locked.values_list("pk", flat=True))
        if ids:
            WebhookDelivery.objects.filter(pk__in=ids, status=Status.PENDING).update(
                status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
            )
    return ids


def _due(now: datetime):
    return WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now, subscription__enabled=True)


def deliveries_due_claim(*, now: datetime, batch: int = 500) -> list[int]:
    return _claim(_due(now), now, batch)


# ------------------------------------------------------------------------------------------- send


def deliveries_send(*, ids: list[int], claimed_at: datetime | None = None, now: datetime | None = None) -> int:
    """Send these deliveries: claim the pending, due ones among them (or, with `claimed_at`, take those
    still held under that claim), POST them in parallel outside any transaction, record each outcome.
    Returns how many the receivers accepted."""
    if transaction.get_connection().in_atomic_block:
        # The claim must commit before the POST, and no row lock may wait on a receiver.
        raise RuntimeError("Webhooks are never sent inside a database transaction.")
    now = now or timezone.now()
    if claimed_at is None:
        claimed_at = now
        ids = _claim(_due(now).filter(pk__in=ids), now)
    rows = list(
        WebhookDelivery.objects.filter(pk__in=ids, status=Status.SENDING, claimed_at=claimed_at).select_related(
            "subscription", "event"
        )
    )
    if not rows:
        return 0
    if len(rows) == 1:
        outcomes = [_attempt(rows[0], now)]
    else:
        with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(rows))) as pool:
            outcomes = list(pool.map(lambda d: _attempt(d, now), rows))
    accepted = 0
    for delivery, outcome in zip(rows, outcomes, strict=True):
        accepted += delivery_outcome_record(delivery=delivery, outcome=outcome, claimed_at=claimed_at, now=now)
    return accepted


def delivery_outcome_record(
    *, delivery: WebhookDelivery, outcome: Outcome, claimed_at: datetime, now: datetime
) -> bool:
    """Store an attempt's outcome if the claim still holds; True when the receiver accepted it."""
    held = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, claimed_at=claimed_at)
    common = {
        "last_attempt_at": now,
        "response_status": outcome.status,
        "response_body": outcome.body,
        "error": outcome.error,
        "claimed_at": None,
    }
    if outcome.ok:
        with transaction.atomic():
            if not held.update(status=Status.DELIVERED, delivered_at=now, next_attempt_at=None, **common):
                return False
            _backlog_promote(subscription_id=delivery.subscription_id, now=now)
        return True
    wait = backoff(delivery.attempts)
    if now + wait > delivery.retry_until:
        held.update(status=Status.FAILED, next_attempt_at=None, **common)
        logger.warning(
            "webhook delivery %s of %s gave up after %s attempts: %s",
            delivery.pk,
            delivery.event.public_id,
            delivery.attempts,
            outcome.error,
        )
    else:
        held.update(status=Status.PENDING, next_attempt_at=now + wait, **common)
    return False


def _backlog_promote(*, subscription_id: int, now: datetime) -> None:
    promoted = list(
        WebhookDelivery.objects.filter(
            subscription_id=subscription_id, status=Status.PENDING, next_attempt_at__gt=now
        ).values_list("pk", flat=True)
    )
    if promoted:
        WebhookDelivery.objects.filter(pk__in=promoted, status=Status.PENDING).update(next_attempt_at=now)
        transaction.on_commit(lambda: publish.deliveries_publish(promoted), robust=True)


# ------------------------------------------------------------------------------------------ sweep


def deliveries_stuck_release(*, now: datetime) -> int:
    """Deliveries whose worker died mid-send: due again at once, or failed when their window has closed."""
    stuck = WebhookDelivery.objects.filter(status=Status.SENDING, claimed_at__lt=now - STUCK_AFTER)
    error = "The worker sending it stopped before recording the answer."
    expired = stuck.filter(retry_until__lte=now).update(
        status=Status.FAILED, claimed_at=None, next_attempt_at=None, error=error
    )
    return expired + stuck.update(status=Status.PENDING, claimed_at=None, next_attempt_at=now, error=error)


def webhooks_sweep(*, now: datetime | None = None, batch: int = 500) -> int:
    """The safety net (beat): release stuck claims, claim what is due, publish it. Returns the claimed count."""
    now = now or timezone.now()
    deliveries_stuck_release(now=now)
    ids = deliveries_due_claim(now=now, batch=batch)
    if ids:
        publish.deliveries_publish(ids, claimed_at=now.isoformat())
    return len(ids)
