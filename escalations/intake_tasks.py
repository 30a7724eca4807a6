"""Celery wrappers around intake services (thin and idempotent)."""

from celery import shared_task
from django.utils import timezone

from escalations import intake
from portal.jobs import job_run


@shared_task(name="escalations.intake_tasks.heartbeats_check", ignore_result=True)
def heartbeats_check() -> int:
    """Beat job "heartbeat-check": open an incident per overdue heartbeat (idempotent)."""
    with job_run("heartbeat-check"):
        return len(intake.heartbeats_check(now=timezone.now()))
