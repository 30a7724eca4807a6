"""Thin, idempotent Celery wrappers around portal services (beat schedule in settings)."""

from celery import shared_task
from django.utils import timezone

from portal.insights import rollup
from portal.jobs import job_run


@shared_task(name="portal.tasks.insights_rollup", acks_late=True, ignore_result=True)
def insights_rollup() -> int:
    """Recompute the Insights roll-up; returns the number of rows written or deleted."""
    with job_run("insights-rollup"):
        run = rollup.insights_rollup_refresh(now=timezone.now())
        return run.created + run.updated + run.deleted
