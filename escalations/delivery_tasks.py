"""Thin Celery wrappers around escalations.delivery. Every task is idempotent: the conditional claim
makes a redelivered message (acks_late, worker killed) harmless."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from escalations.delivery import page_deliver, pages_dispatch_due, pages_reconcile_stuck

logger = logging.getLogger(__name__)

# The broker redelivers an unacknowledged message after visibility_timeout (300 s); an ETA task
# waits unacknowledged in a worker, so only short ETAs are safe. Longer waits are the sweep's job.
MAX_ETA = timedelta(seconds=250)


def page_enqueue(page_ids: Iterable[int], eta_by_id: Mapping[int, datetime] | None = None) -> None:
    """Enqueue delivery. Call from `transaction.on_commit` (the engine does) or outside a transaction."""
    eta_by_id = eta_by_id or {}
    now = timezone.now()
    for page_id in page_ids:
        eta = eta_by_id.get(page_id)
        try:
            if eta is None or eta <= now:
                deliver_page.apply_async(args=[page_id])
            elif eta - now < MAX_ETA:
                deliver_page.apply_async(args=[page_id], eta=eta)
            # else: the page-reconcile sweep dispatches it once it is due.
        except Exception:  # a broker outage must not fail the caller; the sweep catches up
            logger.exception("could not enqueue delivery of page %s; the sweep will", page_id)


@shared_task(name="escalations.deliver_page", acks_late=True, ignore_result=True)
def deliver_page(page_id: int) -> str:
    outcome = page_deliver(page_id=page_id)
    if outcome.retry_at is not None:
        ids = [page_id, *outcome.bundled_page_ids] if outcome.result == "retry" else [page_id]
        page_enqueue(ids, {i: outcome.retry_at for i in ids})
    if outcome.promoted_page_ids:
        page_enqueue(outcome.promoted_page_ids)
    return outcome.result


def _job_started(name: str, now: datetime) -> None:
    from portal.models import JobRun

    JobRun.objects.get_or_create(name=name)
    JobRun.objects.filter(name=name).update(last_started_at=now, runs=F("runs") + 1)


def _job_finished(name: str, error: str = "") -> None:
    from portal.models import JobRun

    now = timezone.now()
    if error:
        JobRun.objects.filter(name=name).update(last_error=error[:2000], last_error_at=now)
    else:
        JobRun.objects.filter(name=name).update(last_success_at=now)


@shared_task(name="escalations.page_reconcile", acks_late=True, ignore_result=True)
def page_reconcile() -> dict:
    """Every 15 s: settle pages stuck in `sending`, then enqueue every due pending page."""
    name = "page-reconcile"
    now = timezone.now()
    _job_started(name, now)
    try:
        settled = pages_reconcile_stuck(now=now)
        due = pages_dispatch_due(now=timezone.now(), limit=settings.BACKSTOP_SWEEP_BATCH)
        page_enqueue(due)
    except Exception as exc:
        _job_finished(name, error=repr(exc))
        raise
    _job_finished(name)
    return {"reconciled": settled, "dispatched": len(due)}
