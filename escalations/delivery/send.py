"""Sending claimed pages through their channels, in parallel, and recording each outcome."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connections
from django.db.models import (
    Q,
)

from escalations.delivery import publish
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


def _send_start(messages: list[OutgoingMessage]) -> list[Future]:
    """Start the provider calls, outside any transaction. Twilio calls are network waits, so they go out
    together from the send pool (each thread has its own HTTP client): a batch takes about as long as its
    slowest call instead of the sum of them. Other channels (outbox, e-mail) are called here, one by one."""
    if all(getattr(channel_for(m.channel), "concurrent_sends", False) for m in messages):
        pool = _send_pool()
        return [pool.submit(_send_one, m) for m in messages]
    futures = []
    for message in messages:
        done: Future = Future()
        done.set_result(_send_one(message))
        futures.append(done)
    return futures


Job = tuple[Page, list[Page], OutgoingMessage]


def _settle(answered: list[tuple[Job, SendResult | Exception]], now: datetime) -> dict[int, DeliveryOutcome]:
    """Record the provider's answers: sent, retry soon, failed, or (no answer) asked about at once."""
    outcomes: dict[int, DeliveryOutcome] = {}
    sent: list[tuple[Page, list[Page], str]] = []
    unanswered: list[tuple[Page, list[Page], OutgoingMessage, Exception]] = []
    for (carrier, pages, message), result in answered:
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
    metrics.deliveries_observe(
        (
            (c.channel, c.first_due_at or c.due_at, outcomes[c.pk].result, outcomes[c.pk].detail, len(p) - 1)
            for (c, p, _), _result in answered
        ),
        now=now,
    )
    return outcomes


def _settle_late(job: Job, now: datetime, caller: int, future: Future) -> None:
    """A call that outlasted the batch's wait, settled when it answers (in the send thread that made it):
    recorded as the batch would have, and what must follow (a retry, the next contact method) published.
    If the process dies first, the page is still `sending` and reconciliation settles it."""
    try:
        outcomes = _settle([(job, future.result())], now)
        publish.outcomes_follow_up(list(outcomes.values()))
    except Exception:
        logger.exception("recording the late answer for page %s failed; reconciliation will settle it", job[0].pk)
    finally:
        if threading.get_ident() != caller:
            # This send thread's own connection: closed, so that up to DELIVERY_SEND_THREADS idle
            # connections per worker process never pile up on the server (late answers are rare).
            connections.close_all()


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
    jobs: list[Job] = []
    for pk in carriers:
        pages = [heads[pk], *riders[pk]]
        jobs.append((heads[pk], pages, page_message_build(carrier=heads[pk], pages=pages)))
    futures = _send_start([message for _, _, message in jobs])
    # A slow provider call must not hold the batch, and with it this worker process, while other pages
    # fall due: what has not answered by the wait is settled by its send thread when it does.
    done, _ = wait(futures, timeout=settings.BACKSTOP_DELIVERY_SEND_WAIT.total_seconds())
    outcomes = _settle(
        [(job, future.result()) for job, future in zip(jobs, futures, strict=True) if future in done], now
    )
    caller = threading.get_ident()
    for job, future in zip(jobs, futures, strict=True):
        if future not in done:
            carrier, pages, _ = job
            outcomes[carrier.pk] = DeliveryOutcome(
                carrier.pk, "in_flight", bundled_page_ids=[p.pk for p in pages[1:]], detail="provider still answering"
            )
            future.add_done_callback(partial(_settle_late, job, now, caller))
    return outcomes
