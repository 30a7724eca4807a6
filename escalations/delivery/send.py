"""Sending claimed pages through their channels, in parallel, and recording each outcome."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

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
    _failover,
    _record_failure,
    _record_sent,
    _record_temporary_failure,
    _timeline,
    _who,
)
from escalations.models import Page, TimelineEvent

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


# Twilio's clock and ours differ a little; look for calls created slightly before the claim.
CLOCK_SLACK = timedelta(seconds=30)


def _same_destination(page: Page):
    return Page.objects.filter(channel=page.channel, destination=page.destination)


def page_find_at_provider(carrier: Page, message: OutgoingMessage) -> str | None:
    """The provider id of `carrier`'s message if the provider has it (created since its claim), else
    None. Raises ChannelError when the provider cannot be asked. Asking never sends anything."""
    known = set(
        _same_destination(carrier).exclude(provider_id="").exclude(pk=carrier.pk).values_list("provider_id", flat=True)
    )
    since = (carrier.claimed_at or carrier.due_at) - CLOCK_SLACK
    return channel_for(carrier.channel).find_sent(message, since=since, exclude_ids=known)


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


def _find_one(job: tuple[Page, OutgoingMessage]) -> str | None | Exception:
    try:
        return page_find_at_provider(*job)
    except Exception as exc:  # the provider cannot be asked now: reconciliation asks again later
        return exc


def _find_many(jobs: list[tuple[Page, OutgoingMessage]]) -> list[str | None | Exception]:
    """Ask the provider, right after a send went unanswered, whether it has the message: a read
    timeout usually means the provider created it and was slow to say so. Asking never sends."""
    if len(jobs) <= 1 or not all(getattr(channel_for(m.channel), "concurrent_sends", False) for _, m in jobs):
        return [_find_one(job) for job in jobs]
    return list(_send_pool().map(_find_one, jobs))


def _settle_unknown(
    unanswered: list[tuple[Page, list[Page], OutgoingMessage, Exception]],
    now: datetime,
    sent: list[tuple[Page, list[Page], str]],
    outcomes: dict[int, DeliveryOutcome],
) -> None:
    """Sends that got no answer: found at the provider, they are sent (never resent); not found (yet),
    they stay `sending` for reconciliation, which resends only once the provider still lacks them after
    BACKSTOP_PAGE_STUCK_AFTER, and meanwhile the person's next contact method is paged."""
    found = _find_many([(carrier, message) for carrier, _, message, _ in unanswered])
    for (carrier, pages, _, error), answer in zip(unanswered, found, strict=True):
        page_id, bundled_ids = carrier.pk, [p.pk for p in pages[1:]]
        label = _channel_label(carrier.channel)
        if isinstance(answer, str):
            _timeline(
                carrier,
                TimelineEvent.Kind.PAGE_STATUS,
                f"Paging {_who(carrier)} by {label}: no answer from the provider in time, but it has the message",
                now,
                {"error": str(error), "provider_id": answer, "attempt": carrier.attempts},
            )
            sent.append((carrier, pages, answer))
            outcomes[page_id] = DeliveryOutcome(
                page_id, "sent", provider_id=answer, bundled_page_ids=bundled_ids, detail="found after no answer"
            )
            continue
        _timeline(
            carrier,
            TimelineEvent.Kind.PAGE_STATUS,
            f"Paging {_who(carrier)} by {label}: no answer from the provider, checking again before resending",
            now,
            {"error": str(error), "attempt": carrier.attempts},
        )
        Page.objects.filter(pk=page_id, status=Page.Status.SENDING).update(error=str(error)[:1000])
        promoted = [pk for p in pages for pk in _failover(p, f"No answer from the {label} provider", now)]
        outcomes[page_id] = DeliveryOutcome(
            page_id, "unknown", bundled_page_ids=bundled_ids, promoted_page_ids=promoted, detail=str(error)
        )


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
    messages = [page_message_build(carrier=carrier, pages=pages) for carrier, pages in jobs]
    results = _send_many(messages)

    outcomes: dict[int, DeliveryOutcome] = {}
    sent: list[tuple[Page, list[Page], str]] = []
    unanswered: list[tuple[Page, list[Page], OutgoingMessage, Exception]] = []
    for (carrier, pages), message, result in zip(jobs, messages, results, strict=True):
        page_id, bundled_ids = carrier.pk, [p.pk for p in pages[1:]]
        if isinstance(result, SendResult):
            sent.append((carrier, pages, result.provider_id))
            outcomes[page_id] = DeliveryOutcome(
                page_id, "sent", provider_id=result.provider_id, bundled_page_ids=bundled_ids
            )
        elif isinstance(result, UnknownOutcomeError):
            unanswered.append((carrier, pages, message, result))
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
    if unanswered:
        _settle_unknown(unanswered, now, sent, outcomes)
    if sent:
        _record_sent(sent, now)
    return outcomes
