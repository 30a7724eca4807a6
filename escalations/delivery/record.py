"""Recording a send attempt's outcome on the page: sent, retry later with backoff, failed (and the next rule)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    F,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from escalations.delivery import retry
from escalations.delivery.channels.console import OUTBOX_PREFIX
from escalations.incidents.events import event_log
from escalations.incidents.timeline import timeline_record_many
from escalations.models import Page, TimelineEvent
from escalations.monitoring import metrics


@dataclass
class DeliveryOutcome:
    page_id: int
    # sent | retry | failed | canceled | throttled | unknown | skipped | bundled (carried by another
    # page of the same batch) | error (not a provider answer: left `sending` for reconciliation) |
    # in_flight (the provider is still answering: its send thread records the answer)
    result: str
    provider_id: str = ""
    bundled_page_ids: list[int] = field(default_factory=list)
    retry_at: datetime | None = None  # for retry/throttled: when the page is due again
    promoted_page_ids: list[int] = field(default_factory=list)  # next rules made due now
    detail: str = ""


def _backoff(attempts: int) -> timedelta:
    return retry.retry_delay(attempts)


def _moved_due(due_at: datetime) -> dict:
    """The update that moves a page's due time later and keeps the first one (lateness counts from it)."""
    return {"due_at": due_at, "first_due_at": Coalesce(F("first_due_at"), F("due_at"))}


def _channel_label(channel: str) -> str:
    return {"sms": "SMS", "voice": "phone", "email": "e-mail", "slack": "Slack"}.get(channel, channel)


def _timeline_event(page: Page, kind: str, message: str, now: datetime, data: dict | None = None) -> TimelineEvent:
    return TimelineEvent(
        incident_id=page.incident_id,
        at=now,
        kind=kind,
        via=TimelineEvent.Via.SYSTEM,
        message=message,
        data={"page_id": page.pk, "channel": page.channel, "user_id": page.user_id, **(data or {})},
    )


def _timeline(page: Page, kind: str, message: str, now: datetime, data: dict | None = None) -> None:
    timeline_record_many([_timeline_event(page, kind, message, now, data)])


def _who(page: Page) -> str:
    return page.user.display_name


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
                if carrier.attempts > 1:
                    extra += f", attempt {carrier.attempts}"
                events.append(
                    _timeline_event(
                        p,
                        TimelineEvent.Kind.PAGED,
                        f"Paged {_who(p)} by {_channel_label(p.channel)} ({p.destination}){extra}",
                        now,
                        {"provider_id": pid, "carrier_page_id": carrier.pk, "attempt": carrier.attempts},
                    )
                )
        timeline_record_many(events)
        for carrier, pages, pid in sent:
            others = {p.incident_id for p in pages} - {carrier.incident_id}
            event_log(
                "Paged %s by %s about incident #%s%s%s",
                _who(carrier),
                _channel_label(carrier.channel),
                carrier.incident_id,
                f" (and {len(others)} more)" if others else "",
                " — in the outbox (/outbox/)" if pid.startswith(OUTBOX_PREFIX) else "",
                event="page_sent",
                page_id=carrier.pk,
                incident_id=carrier.incident_id,
                channel=carrier.channel,
                bundled_page_ids=[p.pk for p in pages[1:]],
            )


def _record_temporary_failure(carrier: Page, pages: list[Page], error: str, now: datetime) -> DeliveryOutcome:
    attempts = Page.objects.values_list("attempts", flat=True).get(pk=carrier.pk)
    bundled_ids = [p.pk for p in pages[1:]]
    if retry.give_up(attempts):
        promoted = _record_failure(carrier, pages, f"gave up after {attempts} attempts: {error}", now)
        return DeliveryOutcome(carrier.pk, "failed", promoted_page_ids=promoted, detail=error)
    retry_at = now + _backoff(attempts)
    failover: list[int] = []
    with transaction.atomic():
        Page.objects.filter(pk=carrier.pk, status=Page.Status.SENDING).update(
            status=Page.Status.PENDING, error=error[:1000], **_moved_due(retry_at)
        )
        # Bundled pages wait with the carrier so they are bundled again, not sent one by one.
        Page.objects.filter(pk__in=bundled_ids, status=Page.Status.BUNDLED).update(
            status=Page.Status.PENDING, bundled_into=None, **_moved_due(retry_at)
        )
        _timeline(
            carrier,
            TimelineEvent.Kind.PAGE_FAILED,
            f"Paging {_who(carrier)} by {_channel_label(carrier.channel)} failed (attempt {attempts}), "
            f"trying again in {(retry_at - now).total_seconds():.0f} s: {error[:200]}",
            now,
            {"attempt": attempts, "temporary": True, "retry_at": retry_at.isoformat()},
        )
        _failure_log(carrier, error, attempts, retry=True)
        if retry.failover_now(attempts):
            for p in pages:
                failover += _failover(p, f"{_channel_label(carrier.channel)} keeps failing", now)
    return DeliveryOutcome(
        carrier.pk,
        "retry",
        bundled_page_ids=bundled_ids,
        retry_at=retry_at,
        promoted_page_ids=failover,
        detail=error,
    )


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
        _failure_log(carrier, error, carrier.attempts, retry=False)
    return promoted


def _failure_log(carrier: Page, error: str, attempts: int, *, retry: bool) -> None:
    # The provider's code, never its message: Twilio's messages quote the number they refused.
    event_log(
        "Paging %s by %s about incident #%s failed (%s, attempt %s)%s",
        _who(carrier),
        _channel_label(carrier.channel),
        carrier.incident_id,
        metrics.provider_error_code(error),
        attempts,
        "; retrying" if retry else "; giving up on this contact method",
        level=logging.WARNING,
        event="page_failed",
        page_id=carrier.pk,
        incident_id=carrier.incident_id,
        channel=carrier.channel,
        code=metrics.provider_error_code(error),
        attempt=attempts,
        retry=retry,
    )


def _failover(page: Page, why: str, now: datetime) -> list[int]:
    """Page the person's next rule on another contact method now, while this page keeps trying: a
    channel that keeps failing must not hold up reaching them. Returns the page made due (if any)."""
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
        .exclude(channel=page.channel, destination=page.destination)
        .order_by("rule_index")
        .first()
    )
    if nxt is None:
        return []
    if nxt.due_at > now and Page.objects.filter(pk=nxt.pk, status=Page.Status.PENDING).update(due_at=now):
        _timeline(
            page,
            TimelineEvent.Kind.PAGE_STATUS,
            f"{why}: paging {_who(page)} by {_channel_label(nxt.channel)} ({nxt.destination}) now as well",
            now,
            {"failover_page_id": nxt.pk},
        )
    return [nxt.pk]


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
