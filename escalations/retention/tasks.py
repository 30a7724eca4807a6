"""Thin Celery wrapper around the retention purge (beat job "retention-purge", queue `periodic`)."""

from celery import shared_task
from django.utils import timezone

from escalations.retention import services
from portal.jobs import job_run


@shared_task(name="escalations.tasks.retention_purge", ignore_result=True)
def retention_purge() -> int:
    """Calls, recordings, outbox rows and payloads past their retention."""
    with job_run("retention-purge"):
        result = services.retention_purge(now=timezone.now())
        return result.calls + result.outbox + result.payloads
