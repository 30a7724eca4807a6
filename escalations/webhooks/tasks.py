"""Thin Celery wrappers around escalations.webhooks.dispatch. Idempotent: a delivery is sent only under
its claim, so a redelivered or doubled message finds nothing left to send."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from escalations.webhooks import dispatch, publish, services
from portal.jobs import job_run


@shared_task(name=publish.DELIVER, acks_late=True, ignore_result=True)
def deliver(delivery_ids: list[int], claimed_at: str | None = None) -> int:
    claim = datetime.fromisoformat(claimed_at) if claimed_at else None
    return dispatch.deliveries_send(ids=delivery_ids, claimed_at=claim)


@shared_task(name=publish.SWEEP, acks_late=True, ignore_result=True)
def sweep() -> int:
    with job_run("webhook-sweep"):
        return dispatch.webhooks_sweep(now=timezone.now())


@shared_task(name=publish.PURGE, ignore_result=True)
def purge() -> int:
    with job_run("webhook-purge"):
        return services.webhook_events_purge(
            before=timezone.now() - timedelta(days=settings.BACKSTOP_WEBHOOK_RETENTION_DAYS)
        )
