"""Sending claimed pages through their channels, in parallel, and recording each outcome."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.conf import settings
from django.db.models import (
    Q,
)

from escalations.delivery.channels import (
    ChannelError,
    OutgoingMessage,
    SendResult,
    TemporaryChannelError,
    UnknownOutcomeError,
    channel_for,
)
from escalations.delivery.message import page_message_build
from escalations.delivery.record import (
    DeliveryOutcome,
    _channel_label,
    _record_failure,
    _record_sent,
    _record_temporary_failure,
    _timeline,
    _who,
)
from escalations.models import Page, TimelineEvent
from escalations.monitoring import metrics

logger = logging.getLogger(__name__)


def _send_pool() -> ThreadPoolExecutor:
    global _SEND_POOL
    with _SEND_POOL_LOCK:
        if _SEND_POOL is None or _SEND_POOL[0] != os.getpid():  # not one inherited through fork()
            _SEND_POOL = (
                os.getpid(),
                ThreadPoolExecutor(max_workers=settings.BACKSTOP_DELIVERY_SEND_THREADS, thread_name_prefix="page-send"),
            )
        return _SEND_POOL[1]


_SEND_POOL: tuple[int, ThreadPoolExecutor] | None = None


_SEND_POOL_LOCK = threading.Lock()


def _send_one(message: OutgoingMessage) -> SendResult | Exception:
    try:
        return channel_for(message.channel).send(message)
    except Exception as exc:  # classified by the caller; anything else leaves the page for reconciliation
        return exc


def _send_many(messages: list[OutgoingMessage]) -> list[SendResult | Exception]:
    """The provider calls, outside any transaction. Twilio calls are network waits, so a batch's calls
    go out together (each thread has its own HTTP client): the batch takes about as long as its slowest
    call instead of the sum of them. Other channels (outbox, e-mail) are called one by one."""
    together = len(messages) > 1 and all(getattr(channel_for(m.channel), "concurrent_sends", False) for m in messages)
    if not together:
        return [_send_one(m) for m in messages]
    return list(_send_pool().map(_send_one, messages))


def _pages_send(carriers: list[int], now: datetime) -> dict[int, DeliveryOutcome]:
    loaded = (
        Page.objects.filter(Q(pk__in=carriers) | Q(bundled_into__in=carriers, status=Page.Status.BUNDLED))
        .select_related("incident__team", "user")
        .order_by("incident_id", "id")
    )
    riders: dict[int, list[Page]] = {pk: [] for pk in carriers}
    heads: dict[int, Page] = {}
    for page in loaded:
        if page.pk in riders:
            heads[page.pk] = page
        else:
            riders[page.bundled_into_id].append(page)
    jobs = [(heads[pk], [heads[pk], *riders[pk]]) for pk in carriers]
    results = _send_many([page_message_build(carrier=carrier, pages=pages) for carrier, pages in jobs])

    outcomes: dict[int, DeliveryOutcome] = {}
    sent: list[tuple[Page, list[Page], str]] = []
    for (carrier, pages), result in zip(jobs, results, strict=True):
        page_id, bundled_ids = carrier.pk, [p.pk for p in pages[1:]]
        if isinstance(result, SendResult):
            sent.append((carrier, pages, result.provider_id))
            outcomes[page_id] = DeliveryOutcome(
                page_id, "sent", provider_id=result.provider_id, bundled_page_ids=bundled_ids
            )
        elif isinstance(result, UnknownOutcomeError):
            _timeline(
                carrier,
                TimelineEvent.Kind.PAGE_STATUS,
                f"Paging {_who(carrier)} by {_channel_label(carrier.channel)}: no answer from the provider, checking",
                now,
                {"error": str(result)},
            )
            Page.objects.filter(pk=page_id, status=Page.Status.SENDING).update(error=str(result)[:1000])
            outcomes[page_id] = DeliveryOutcome(page_id, "unknown", bundled_page_ids=bundled_ids, detail=str(result))
        elif isinstance(result, TemporaryChannelError):
            outcomes[page_id] = _record_temporary_failure(carrier, pages, str(result), now)
        elif isinstance(result, ChannelError):
            promoted = _record_failure(carrier, pages, str(result), now)
            outcomes[page_id] = DeliveryOutcome(
                page_id, "failed", bundled_page_ids=bundled_ids, promoted_page_ids=promoted, detail=str(result)
            )
        else:
            # Not a provider answer (a bug, the process being torn down): the page stays `sending`
            # and reconciliation asks the provider whether the message went out.
            logger.error("delivery of page %s failed; reconciliation will settle it", page_id, exc_info=result)
            outcomes[page_id] = DeliveryOutcome(page_id, "error", bundled_page_ids=bundled_ids, detail=repr(result))
    if sent:
        _record_sent(sent, now)
    metrics.deliveries_observe(
        ((c.channel, c.due_at, outcomes[c.pk].result, outcomes[c.pk].detail, len(p) - 1) for c, p in jobs), now=now
    )
    return outcomes
