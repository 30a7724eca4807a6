"""Safety nets: dispatch pages that came due and reconcile pages stuck in 'sending'."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from escalations.delivery.channels import ChannelError
from escalations.delivery.message import page_message_build
from escalations.delivery.record import _channel_label, _moved_due, _record_failure, _timeline, _who
from escalations.delivery.send import page_find_at_provider
from escalations.incidents.events import event_log
from escalations.models import Page, TimelineEvent

logger = logging.getLogger(__name__)


def _carried_pages(carrier: Page) -> list[Page]:
    bundled = list(
        Page.objects.filter(bundled_into=carrier, status=Page.Status.BUNDLED)
        .select_related("incident__team", "user")
        .order_by("incident_id", "id")
    )
    return [carrier, *bundled]


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


def _recovered_log(carrier: Page, how: str) -> None:
    event_log(
        "Page %s about incident #%s was left sending (worker or provider lost); %s",
        carrier.pk,
        carrier.incident_id,
        how,
        event="fault_recovered",
        fault="page_stuck_sending",
        page_id=carrier.pk,
        incident_id=carrier.incident_id,
        channel=carrier.channel,
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
        try:
            found = page_find_at_provider(carrier, page_message_build(carrier=carrier, pages=pages))
        except ChannelError as exc:
            logger.warning("reconcile page %s: provider lookup failed: %s", carrier.pk, exc)
            continue
        mine = Page.objects.filter(pk=carrier.pk, status=Page.Status.SENDING, claimed_at=carrier.claimed_at)
        if found:
            # Sent during the attempt claimed at `claimed_at` (the provider created it then, as a send
            # that answered in time is stamped with its batch's start): that is when it went out.
            sent_at = carrier.claimed_at
            with transaction.atomic():
                if mine.update(status=Page.Status.SENT, provider_id=found, sent_at=sent_at, status_at=now):
                    Page.objects.filter(pk__in=[p.pk for p in pages[1:]]).update(sent_at=sent_at)
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
                    _recovered_log(carrier, "the provider had the message: marked sent, not resent")
                    settled += 1
            continue
        with transaction.atomic():
            if carrier.attempts >= settings.BACKSTOP_PAGE_MAX_ATTEMPTS:
                if mine.exists():
                    _record_failure(carrier, pages, f"gave up after {carrier.attempts} attempts", now)
                    settled += 1
                continue
            if mine.update(status=Page.Status.PENDING, **_moved_due(now)):
                Page.objects.filter(bundled_into=carrier, status=Page.Status.BUNDLED).update(
                    status=Page.Status.PENDING, bundled_into=None, **_moved_due(now)
                )
                _timeline(
                    carrier,
                    TimelineEvent.Kind.PAGE_STATUS,
                    f"The provider never got the page to {_who(carrier)}; sending again",
                    now,
                )
                _recovered_log(carrier, "the provider never got it: sending again")
                settled += 1
    return settled
