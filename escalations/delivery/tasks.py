"""Thin Celery wrappers around escalations.delivery. Every task is idempotent: the conditional claim
makes a redelivered message (acks_late, worker killed) harmless."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from escalations.delivery import publish
from escalations.delivery.deliver import pages_deliver
from escalations.delivery.reconcile import pages_dispatch_due, pages_due_soon_get, pages_reconcile_stuck
from portal.jobs import job_run

logger = logging.getLogger(__name__)


@shared_task(name=publish.DELIVER_PAGE, acks_late=True, ignore_result=True)
def deliver_page(page_id: int) -> str:
    outcomes = pages_deliver(page_ids=[page_id])
    publish.outcomes_follow_up(outcomes)
    return outcomes[0].result


@shared_task(name=publish.DELIVER_PAGES, acks_late=True, ignore_result=True)
def deliver_pages(page_ids: list[int]) -> list[str]:
    """Several pages due at the same moment, claimed together and sent together. Each claim is
    independent, so a redelivered or half-finished message only sends what is still pending. A page
    left claimed by a crash is settled by reconciliation; one the claim never reached (database error)
    stays pending and the reconcile job enqueues it again."""
    try:
        outcomes = pages_deliver(page_ids=page_ids)
    except Exception:
        logger.exception("delivery of pages %s failed; reconciliation will settle them", page_ids)
        return ["error"] * len(page_ids)
    publish.outcomes_follow_up(outcomes)
    return [outcome.result for outcome in outcomes]


@shared_task(name="escalations.page_reconcile", acks_late=True, ignore_result=True)
def page_reconcile() -> dict:
    """Every 5 s: settle pages stuck in `sending`, enqueue every due pending page, and time
    messages for the pages falling due before the next run (a duplicate message is harmless: the
    claim is conditional)."""
    with job_run("page-reconcile"):
        settled = pages_reconcile_stuck(now=timezone.now())
        due = pages_dispatch_due(now=timezone.now(), limit=settings.BACKSTOP_SWEEP_BATCH)
        publish.page_enqueue(due)
        soon = pages_due_soon_get(now=timezone.now(), within=settings.BACKSTOP_PAGE_LOOKAHEAD)
        publish.page_enqueue(soon, soon)
    return {"reconciled": settled, "dispatched": len(due), "timed": len(soon)}
