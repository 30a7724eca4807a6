"""Page delivery: from a `pending` Page row to exactly one message at the provider.

Exactly-once rests on three things:

* The claim is a conditional transition (`pending -> sending`) of a row locked `FOR UPDATE`;
  whoever moves the row owns the attempt, so a redelivered Celery message, a second worker or an
  overlapping batch finds nothing to do. A batch claims all its pages in one transaction.
* The provider is called outside any transaction, and its answer is recorded with another
  conditional UPDATE. A timeout leaves the row in `sending`.
* `pages_reconcile_stuck` asks the provider about rows left in `sending` (worker killed, timeout)
  and only puts a page back to `pending` when the provider does not have its message. SMS bodies
  carry a page reference ("Ref P123") so the message can be found again; calls are matched on
  to/from/creation time. E-mail cannot be asked and is at-least-once.

No Celery here: the tasks in `escalations.delivery_tasks` wrap these functions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from config import locks
from escalations.channels import (
    ChannelError,
    OutgoingMessage,
    SendResult,
    TemporaryChannelError,
    UnknownOutcomeError,
    channel_for,
    page_reference,
)
from escalations.models import Incident, Page, TimelineEvent

logger = logging.getLogger(__name__)

__all__ = [
    "DeliveryOutcome",
    "StatusUpdate",
    "page_deliver",
    "page_message_build",
    "pages_deliver",
    "page_status_update",
    "pages_dispatch_due",
    "pages_reconcile_stuck",
]

BACKOFF_BASE = timedelta(seconds=15)
BACKOFF_MAX = timedelta(minutes=5)
# Twilio's clock and ours differ a little; look for calls created slightly before the claim.
CLOCK_SLACK = timedelta(seconds=30)

NOT_REACHED = {Page.Status.FAILED, Page.Status.NO_ANSWER, Page.Status.BUSY}
TERMINAL = {
    Page.Status.DELIVERED,
    Page.Status.ANSWERED,
    Page.Status.FAILED,
    Page.Status.NO_ANSWER,
    Page.Status.BUSY,
    Page.Status.CANCELED,
}


@dataclass
class DeliveryOutcome:
    page_id: int
    # sent | retry | failed | canceled | throttled | unknown | skipped | bundled (carried by another
    # page of the same batch) | error (not a provider answer: left `sending` for reconciliation)
    result: str
    provider_id: str = ""
    bundled_page_ids: list[int] = field(default_factory=list)
    retry_at: datetime | None = None  # for retry/throttled: when the page is due again
    promoted_page_ids: list[int] = field(default_factory=list)  # next rules made due now
    detail: str = ""


@dataclass
class StatusUpdate:
    changed: bool
    status: str
    promoted_page_ids: list[int] = field(default_factory=list)


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def _throttle(channel: str) -> tuple[int, timedelta]:
    conf = settings.BACKSTOP_PAGE_THROTTLE.get(channel) or {"count": 1_000_000, "seconds": 1}
    return int(conf["count"]), timedelta(seconds=conf["seconds"])


def _same_destination(page: Page):
    return Page.objects.filter(channel=page.channel, destination=page.destination)


def _channel_label(channel: str) -> str:
    return {"sms": "SMS", "voice": "phone", "email": "e-mail"}.get(channel, channel)


def _timeline_event(page: Page, kind: str, message: str, now: datetime, data: dict | None = None) -> TimelineEvent:
    return TimelineEvent(
        incident_id=page.incident_id,
        at=now,
        kind=kind,
        via=TimelineEvent.Via.SYSTEM,
        message=message,
        data={"page_id": page.pk, "channel": page.channel, **(data or {})},
    )


def _timeline(page: Page, kind: str, message: str, now: datetime, data: dict | None = None) -> None:
    _timeline_event(page, kind, message, now, data).save(force_insert=True)


def _who(page: Page) -> str:
    return page.user.display_name


# --- message text ------------------------------------------------------------------------------


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def page_message_build(*, carrier: Page, pages: list[Page]) -> OutgoingMessage:
    """The text for one message carrying `pages` (carrier first). Short, actionable, with a reference."""
    incidents: dict[int, Incident] = {}
    for p in pages:
        incidents.setdefault(p.incident_id, p.incident)
    ordered = sorted(incidents.values(), key=lambda i: i.pk)
    ref = page_reference(carrier.pk)
    first = ordered[0]
    teams = {i.team.name for i in ordered}
    if len(ordered) == 1:
        n = first.pk
        body = (
            f"Backstop #{n} [{first.team.name}] {_short(first.title, 100)}. "
            f"Reply {n}A ack, {n}R resolve, {n}E escalate. {ref}"
        )
        subject = f"[Backstop #{n}] [{first.team.name}] {_short(first.title, 150)}"
        voice = f"Backstop alert for team {first.team.name}. Incident {n}: {_short(first.title, 200)}."
    else:
        team_part = f" for {first.team.name}" if len(teams) == 1 else ""
        listing = ", ".join(
            f"#{i.pk} {_short(i.title, 40)}" if len(teams) == 1 else f"#{i.pk} [{i.team.name}] {_short(i.title, 40)}"
            for i in ordered
        )
        n = first.pk
        body = (
            f"{len(ordered)} incidents open{team_part}: {listing}. "
            f"Reply <number>A ack, R resolve, E escalate, e.g. {n}A. {ref}"
        )
        subject = f"[Backstop] {len(ordered)} incidents open{team_part}"
        voice = f"Backstop alert. {len(ordered)} incidents are open{team_part}. " + " ".join(
            f"Incident {i.pk}: {_short(i.title, 120)}." for i in ordered
        )
    if carrier.channel == Page.Channel.EMAIL:
        link_base = settings.PUBLIC_BASE_URL
        lines = [body, ""]
        for i in ordered:
            lines += [f"#{i.pk} [{i.team.name}] {i.title}", f"  {link_base}/incidents/{i.pk}/"]
            if i.details:
                lines.append("  " + _short(i.details, 500))
        body = "\n".join(lines)
    elif carrier.channel == Page.Channel.VOICE:
        body = voice + f" {ref}"
    return OutgoingMessage(
        channel=carrier.channel,
        to=carrier.destination,
        body=body,
        subject=subject,
        page_id=carrier.pk,
        incident_id=carrier.incident_id,
        kind="page",
    )


def _carried_pages(carrier: Page) -> list[Page]:
    bundled = list(
        Page.objects.filter(bundled_into=carrier, status=Page.Status.BUNDLED)
        .select_related("incident__team", "user")
        .order_by("incident_id", "id")
    )
    return [carrier, *bundled]


# --- deliver -------------------------------------------------------------------------------------


def page_deliver(*, page_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Send one due page (and any other due pages to the same destination, bundled) exactly once."""
    return pages_deliver(page_ids=[page_id], now=now)[0]


def pages_deliver(*, page_ids: Sequence[int], now: datetime | None = None) -> list[DeliveryOutcome]:
    """Send these due pages, each exactly once, with every other due page to the same destination
    riding along (bundled). One outcome per distinct id, in order.

    A wake-up message carries the pages due in one short bucket, so the batch is claimed in one
    transaction (a handful of statements however many pages), the provider is called for every claimed
    page at once, outside any transaction, and the answers are recorded together. Each page's claim is
    still its own conditional `pending -> sending` transition under a row lock, so a redelivered
    message, a second worker or an overlapping batch finds nothing left to send.
    """
    now = now or timezone.now()
    ids = list(dict.fromkeys(page_ids))
    if not ids:
        return []
    for attempt in range(3):
        outcomes: dict[int, DeliveryOutcome] = {}
        try:
            carriers = _pages_claim(ids, now, outcomes)
            break
        except OperationalError as exc:
            # Row locks are taken in id order, but an acknowledgement cancelling an incident's pages
            # locks them in its own order; PostgreSQL breaks such a cycle by failing one side.
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "40P01":
                raise
    if carriers:
        outcomes.update(_pages_send(carriers, now))
    return [outcomes[pk] for pk in ids]


def _open_incident() -> Exists:
    # Correlated on the page's own incident: one primary-key probe per page. `incident_id [NOT] IN
    # (SELECT … every open incident)` made PostgreSQL hash all open incidents for each delivery
    # (5 ms of its CPU per page with 10,000 open incidents).
    return Exists(
        Incident.objects.filter(pk=OuterRef("incident_id"), status=Incident.Status.TRIGGERED, suppressed=False)
    )


def _destinations(keys: Iterable[tuple[str, str]]) -> Q:
    q = Q(pk__in=[])
    for channel, destination in keys:
        q |= Q(channel=channel, destination=destination)
    return q


def _lock_destinations(keys: Iterable[tuple[str, str]]) -> None:
    """Serialize throttle checks and bundling per destination for the rest of the transaction.
    Always in ascending key order, so two batches sharing destinations never wait on each other in a cycle."""
    if connection.vendor != "postgresql":
        return  # SQLite (the demo): write transactions are serialized anyway
    keys_sorted = sorted({locks.destination_key(channel, destination) for channel, destination in keys})
    with connection.cursor() as cur:
        # unnest() yields the sorted array in order and each row's lock is taken as it is produced.
        cur.execute(
            "SELECT pg_advisory_xact_lock(%s::int, k) FROM unnest(%s::int[]) AS k",
            [locks.PAGE_DESTINATION_CLASS, keys_sorted],
        )


def _pages_claim(ids: list[int], now: datetime, outcomes: dict[int, DeliveryOutcome]) -> list[int]:
    """In one transaction: cancel pages of incidents no longer triggered, hold back throttled
    destinations, claim one carrier per destination (`pending -> sending`) and bundle every other
    due page to it. Returns the carriers' ids; fills `outcomes` for every other id."""
    with transaction.atomic():
        rows = {
            row[0]: row
            for row in Page.objects.filter(pk__in=ids)
            .annotate(open=_open_incident())
            .values_list("pk", "status", "due_at", "channel", "destination", "open")
        }
        cancel: list[int] = []
        due: dict[tuple[str, str], list[int]] = {}
        for pk in ids:
            row = rows.get(pk)
            if row is None:
                outcomes[pk] = DeliveryOutcome(pk, "skipped", detail="no such page")
                continue
            _, status, due_at, channel, destination, is_open = row
            if status != Page.Status.PENDING:
                outcomes[pk] = DeliveryOutcome(pk, "skipped", detail=f"status {status}")
            elif not is_open:
                cancel.append(pk)
                outcomes[pk] = DeliveryOutcome(pk, "canceled")
            elif due_at > now:
                outcomes[pk] = DeliveryOutcome(pk, "skipped", detail=f"due {due_at}")
            else:
                due.setdefault((channel, destination), []).append(pk)
        if cancel:
            Page.objects.filter(~_open_incident(), pk__in=cancel, status=Page.Status.PENDING).update(
                status=Page.Status.CANCELED, status_at=now
            )
        if not due:
            return []
        _lock_destinations(due)

        # Throttle: recent claims per destination (one query for the whole batch).
        longest = max(_throttle(channel)[1] for channel, _ in due)
        recent: dict[tuple[str, str], list[datetime]] = {}
        for channel, destination, claimed_at in (
            Page.objects.filter(_destinations(due), claimed_at__gt=now - longest, bundled_into__isnull=True)
            .exclude(status__in=[Page.Status.PENDING, Page.Status.CANCELED, Page.Status.BUNDLED])
            .exclude(pk__in=ids)
            .values_list("channel", "destination", "claimed_at")
        ):
            recent.setdefault((channel, destination), []).append(claimed_at)
        claimable: dict[tuple[str, str], list[int]] = {}
        for key, batch in due.items():
            count, window = _throttle(key[0])
            in_window = [at for at in recent.get(key, ()) if at > now - window]
            if len(in_window) < count:
                claimable[key] = batch
                continue
            free_at = min(in_window) + window
            Page.objects.filter(pk__in=batch, status=Page.Status.PENDING).update(due_at=free_at)
            for pk in batch:
                outcomes[pk] = DeliveryOutcome(pk, "throttled", retry_at=free_at)
        if not claimable:
            return []

        # Lock every due pending page to these destinations whose incident is still triggered, in
        # id order: the batch's own pages and those that will ride along. A concurrent claimer waits
        # here and then sees them no longer pending.
        locked: dict[tuple[str, str], list[int]] = {}
        for pk, channel, destination in (
            Page.objects.select_for_update(of=("self",))
            .filter(_open_incident(), _destinations(claimable), status=Page.Status.PENDING, due_at__lte=now)
            .order_by("pk")
            .values_list("pk", "channel", "destination")
        ):
            locked.setdefault((channel, destination), []).append(pk)
        carriers: list[int] = []
        bundle: dict[int, list[int]] = {}
        for key, batch in claimable.items():
            present = locked.get(key, [])
            carrier = next((pk for pk in batch if pk in present), None)
            for pk in batch:
                if pk not in present:
                    outcomes[pk] = DeliveryOutcome(pk, "skipped", detail="claimed elsewhere")
                elif pk != carrier:
                    outcomes[pk] = DeliveryOutcome(pk, "bundled", detail=f"carried by page {carrier}")
            if carrier is None:
                continue
            carriers.append(carrier)
            riders = [pk for pk in present if pk != carrier]
            if riders:
                bundle[carrier] = riders
        if carriers:
            Page.objects.filter(pk__in=carriers).update(
                status=Page.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, error=""
            )
        if bundle:
            Page.objects.filter(pk__in=[pk for riders in bundle.values() for pk in riders]).update(
                status=Page.Status.BUNDLED,
                status_at=now,
                bundled_into=Case(
                    *[When(pk__in=riders, then=Value(carrier)) for carrier, riders in bundle.items()],
                    output_field=BigIntegerField(),
                ),
            )
    return carriers


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
    return outcomes


def _record_sent(sent: list[tuple[Page, list[Page], str]], now: datetime) -> None:
    """Mark carriers sent and their riders' send time, and write the "paged" lines: one statement of
    each kind for the whole batch."""
    sending = Q(status=Page.Status.SENDING)
    provider_id = Case(*[When(pk=carrier.pk, then=Value(pid)) for carrier, _, pid in sent], output_field=CharField())
    with transaction.atomic():
        # A status callback may have got here first: then its status stays, and only what we know
        # and it did not (provider id, send time) is filled in.
        Page.objects.filter(pk__in=[carrier.pk for carrier, _, _ in sent]).update(
            status=Case(When(sending, then=Value(Page.Status.SENT)), default=F("status"), output_field=CharField()),
            status_at=Case(When(sending, then=Value(now)), default=F("status_at"), output_field=DateTimeField()),
            error=Case(When(sending, then=Value("")), default=F("error"), output_field=TextField()),
            provider_id=Case(
                When(sending | Q(provider_id=""), then=provider_id), default=F("provider_id"), output_field=CharField()
            ),
            sent_at=Case(
                When(sending, then=Value(now)),
                default=Coalesce(F("sent_at"), Value(now)),
                output_field=DateTimeField(),
            ),
        )
        riders = [p.pk for _, pages, _ in sent for p in pages[1:]]
        if riders:
            Page.objects.filter(pk__in=riders, status=Page.Status.BUNDLED).update(sent_at=now)
        events = []
        for carrier, pages, pid in sent:
            for p in pages:
                if p is not carrier and p.incident_id == carrier.incident_id:
                    continue  # one "paged" line per incident
                extra = "" if p is carrier else f" (with #{carrier.incident_id})"
                events.append(
                    _timeline_event(
                        p,
                        TimelineEvent.Kind.PAGED,
                        f"Paged {_who(p)} by {_channel_label(p.channel)} ({p.destination}){extra}",
                        now,
                        {"provider_id": pid, "carrier_page_id": carrier.pk},
                    )
                )
        TimelineEvent.objects.bulk_create(events)


def _record_temporary_failure(carrier: Page, pages: list[Page], error: str, now: datetime) -> DeliveryOutcome:
    attempts = Page.objects.values_list("attempts", flat=True).get(pk=carrier.pk)
    bundled_ids = [p.pk for p in pages[1:]]
    if attempts >= settings.BACKSTOP_PAGE_MAX_ATTEMPTS:
        promoted = _record_failure(carrier, pages, f"gave up after {attempts} attempts: {error}", now)
        return DeliveryOutcome(carrier.pk, "failed", promoted_page_ids=promoted, detail=error)
    retry_at = now + _backoff(attempts)
    with transaction.atomic():
        Page.objects.filter(pk=carrier.pk, status=Page.Status.SENDING).update(
            status=Page.Status.PENDING, due_at=retry_at, error=error[:1000]
        )
        # Bundled pages wait with the carrier so they are bundled again, not sent one by one.
        Page.objects.filter(pk__in=bundled_ids, status=Page.Status.BUNDLED).update(
            status=Page.Status.PENDING, bundled_into=None, due_at=retry_at
        )
        _timeline(
            carrier,
            TimelineEvent.Kind.PAGE_FAILED,
            f"Paging {_who(carrier)} by {_channel_label(carrier.channel)} failed (attempt {attempts}), "
            f"retrying at {retry_at:%H:%M:%S} UTC: {error[:200]}",
            now,
            {"attempt": attempts, "temporary": True},
        )
    return DeliveryOutcome(carrier.pk, "retry", bundled_page_ids=bundled_ids, retry_at=retry_at, detail=error)


def _record_failure(carrier: Page, pages: list[Page], error: str, now: datetime) -> list[int]:
    promoted: list[int] = []
    with transaction.atomic():
        Page.objects.filter(pk=carrier.pk, status__in=[Page.Status.SENDING, Page.Status.PENDING]).update(
            status=Page.Status.FAILED, status_at=now, error=error[:1000]
        )
        Page.objects.filter(pk__in=[p.pk for p in pages[1:]], status=Page.Status.BUNDLED).update(
            status=Page.Status.FAILED, status_at=now, error=error[:1000]
        )
        for p in pages:
            _timeline(
                p,
                TimelineEvent.Kind.PAGE_FAILED,
                f"Could not page {_who(p)} by {_channel_label(p.channel)} ({p.destination}): {error[:200]}",
                now,
            )
            promoted += _promote_next_rule(p, now)
    return promoted


def _promote_next_rule(page: Page, now: datetime) -> list[int]:
    """The person's next notification rule for the same step becomes due now."""
    nxt = (
        Page.objects.filter(
            incident_id=page.incident_id,
            cycle=page.cycle,
            step=page.step,
            loop=page.loop,
            user_id=page.user_id,
            rule_index__gt=page.rule_index,
            status=Page.Status.PENDING,
        )
        .order_by("rule_index")
        .first()
    )
    if nxt is None:
        return []
    if nxt.due_at > now:
        Page.objects.filter(pk=nxt.pk, status=Page.Status.PENDING).update(due_at=now)
    return [nxt.pk]


# --- sweep helpers -------------------------------------------------------------------------------


def pages_dispatch_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of pending pages that are due (their Celery message may have been lost)."""
    now = now or timezone.now()
    return list(
        Page.objects.filter(status=Page.Status.PENDING, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def pages_due_soon_get(*, now: datetime, within: timedelta, limit: int = 5000) -> dict[int, datetime]:
    """Pending pages falling due in (now, now + within]: id -> due. Pages of rules delayed longer
    than a Celery ETA may wait get no message when created; this finds them before they are due."""
    return dict(
        Page.objects.filter(status=Page.Status.PENDING, due_at__gt=now, due_at__lte=now + within)
        .order_by("due_at", "id")
        .values_list("pk", "due_at")[:limit]
    )


def pages_reconcile_stuck(*, now: datetime | None = None) -> int:
    """Settle pages left in `sending` (worker died, provider timed out). Returns how many were settled.

    Found at the provider: `sent` with that id (never resent). Not found: back to `pending`, due now.
    Safe to run twice at once: every write is conditional on the row still being in the state read.
    """
    now = now or timezone.now()
    stuck = list(
        Page.objects.filter(status=Page.Status.SENDING, claimed_at__lt=now - settings.BACKSTOP_PAGE_STUCK_AFTER)
        .select_related("incident__team", "user")
        .order_by("claimed_at")[: settings.BACKSTOP_SWEEP_BATCH]
    )
    settled = 0
    for carrier in stuck:
        pages = _carried_pages(carrier)
        message = page_message_build(carrier=carrier, pages=pages)
        known = set(
            _same_destination(carrier)
            .exclude(provider_id="")
            .exclude(pk=carrier.pk)
            .values_list("provider_id", flat=True)
        )
        try:
            found = channel_for(carrier.channel).find_sent(
                message, since=carrier.claimed_at - CLOCK_SLACK, exclude_ids=known
            )
        except ChannelError as exc:
            logger.warning("reconcile page %s: provider lookup failed: %s", carrier.pk, exc)
            continue
        mine = Page.objects.filter(pk=carrier.pk, status=Page.Status.SENDING, claimed_at=carrier.claimed_at)
        if found:
            with transaction.atomic():
                if mine.update(status=Page.Status.SENT, provider_id=found, sent_at=now, status_at=now):
                    Page.objects.filter(pk__in=[p.pk for p in pages[1:]]).update(sent_at=now)
                    for p in pages:
                        if p is not carrier and p.incident_id == carrier.incident_id:
                            continue
                        _timeline(
                            p,
                            TimelineEvent.Kind.PAGED,
                            f"Paged {_who(p)} by {_channel_label(p.channel)} ({p.destination})",
                            now,
                            {"provider_id": found, "reconciled": True, "carrier_page_id": carrier.pk},
                        )
                    settled += 1
            continue
        with transaction.atomic():
            if carrier.attempts >= settings.BACKSTOP_PAGE_MAX_ATTEMPTS:
                if mine.exists():
                    _record_failure(carrier, pages, f"gave up after {carrier.attempts} attempts", now)
                    settled += 1
                continue
            if mine.update(status=Page.Status.PENDING, due_at=now):
                Page.objects.filter(bundled_into=carrier, status=Page.Status.BUNDLED).update(
                    status=Page.Status.PENDING, bundled_into=None, due_at=now
                )
                _timeline(
                    carrier,
                    TimelineEvent.Kind.PAGE_STATUS,
                    f"The provider never got the page to {_who(carrier)}; sending again",
                    now,
                )
                settled += 1
    return settled


# --- provider status callbacks -------------------------------------------------------------------

_SMS_STATUS = {
    "accepted": Page.Status.SENT,
    "scheduled": Page.Status.SENT,
    "queued": Page.Status.SENT,
    "sending": Page.Status.SENT,
    "sent": Page.Status.SENT,
    "delivered": Page.Status.DELIVERED,
    "read": Page.Status.DELIVERED,
    "undelivered": Page.Status.FAILED,
    "failed": Page.Status.FAILED,
    "canceled": Page.Status.FAILED,
}
_CALL_STATUS = {
    "queued": Page.Status.SENT,
    "initiated": Page.Status.SENT,
    "ringing": Page.Status.SENT,
    "in-progress": Page.Status.ANSWERED,
    "answered": Page.Status.ANSWERED,
    "completed": Page.Status.ANSWERED,
    "busy": Page.Status.BUSY,
    "no-answer": Page.Status.NO_ANSWER,
    "failed": Page.Status.FAILED,
    "canceled": Page.Status.NO_ANSWER,
}


def answered_by_machine(answered_by: str | None) -> bool:
    """AMD: a voicemail box or fax picked up. The person was not reached."""
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")


def _mapped_status(channel: str, provider_status: str, answered_by: str | None) -> str | None:
    provider_status = (provider_status or "").strip().lower()
    if channel == Page.Channel.VOICE:
        status = _CALL_STATUS.get(provider_status)
        if status == Page.Status.ANSWERED and answered_by_machine(answered_by):
            return Page.Status.NO_ANSWER
        return status
    return _SMS_STATUS.get(provider_status)


def _transition_allowed(current: str, new: str, *, machine: bool) -> bool:
    if current == new:
        return False
    if current in (Page.Status.PENDING, Page.Status.SENDING, Page.Status.SENT):
        return True
    # Terminal: the first terminal status wins (callbacks are retried and arrive out of order), except
    # that AMD may turn an "answered" call into "voicemail picked up".
    return current == Page.Status.ANSWERED and new == Page.Status.NO_ANSWER and machine


def page_status_update(
    *,
    page_id: int,
    provider_status: str,
    provider_id: str,
    answered_by: str | None = None,
    now: datetime | None = None,
) -> StatusUpdate:
    """Apply a Twilio status callback. Idempotent: a retried or stale callback changes nothing."""
    now = now or timezone.now()
    promoted: list[int] = []
    with transaction.atomic():
        page = Page.objects.select_for_update().filter(pk=page_id).first()
        if page is None:
            return StatusUpdate(False, "")
        new = _mapped_status(page.channel, provider_status, answered_by)
        if new is None or page.status in (Page.Status.BUNDLED, Page.Status.CANCELED):
            return StatusUpdate(False, page.status)
        if page.provider_id and provider_id and page.provider_id != provider_id:
            logger.warning("page %s: callback for %s, but page has %s", page_id, provider_id, page.provider_id)
            return StatusUpdate(False, page.status)
        machine = answered_by_machine(answered_by)
        if not _transition_allowed(page.status, new, machine=machine):
            if not page.provider_id and provider_id:
                Page.objects.filter(pk=page_id).update(provider_id=provider_id)
            return StatusUpdate(False, page.status)
        updates = {"status": new, "status_at": now}
        if provider_id and not page.provider_id:
            updates["provider_id"] = provider_id
        if page.sent_at is None:
            updates["sent_at"] = now
        Page.objects.filter(pk=page_id).update(**updates)
        page = Page.objects.select_related("user", "incident").get(pk=page_id)
        label = _channel_label(page.channel)
        if new in NOT_REACHED:
            why = {
                Page.Status.FAILED: "failed",
                Page.Status.NO_ANSWER: "voicemail picked up" if machine else "not answered",
                Page.Status.BUSY: "busy",
            }[new]
            _timeline(
                page,
                TimelineEvent.Kind.PAGE_FAILED,
                f"Page to {_who(page)} by {label} ({page.destination}): {why}",
                now,
                {"provider_status": provider_status, "answered_by": answered_by or ""},
            )
            for p in [page, *Page.objects.filter(bundled_into=page).select_related("user")]:
                promoted += _promote_next_rule(p, now)
        elif new in (Page.Status.DELIVERED, Page.Status.ANSWERED):
            what = "delivered to" if new == Page.Status.DELIVERED else "answered by"
            _timeline(
                page,
                TimelineEvent.Kind.PAGE_STATUS,
                f"{label.capitalize()} page {what} {_who(page)} ({page.destination})",
                now,
                {"provider_status": provider_status, "answered_by": answered_by or ""},
            )
    return StatusUpdate(True, new, promoted)


def page_bundle_incidents(page: Page) -> list[Incident]:
    """The incidents a (carrier) page's message covers, oldest first."""
    ids = {page.incident_id} | set(Page.objects.filter(bundled_into=page).values_list("incident_id", flat=True))
    return list(Incident.objects.filter(pk__in=ids).select_related("team").order_by("pk"))


def page_open_incidents(page: Page) -> list[Incident]:
    return [i for i in page_bundle_incidents(page) if i.status == Incident.Status.TRIGGERED]
