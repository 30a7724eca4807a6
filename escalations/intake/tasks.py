"""Celery wrappers around intake services (thin and idempotent)."""

from celery import shared_task
from django.utils import timezone

from escalations.intake import drain as intake_drain
from escalations.intake import heartbeats, inbox, kick
from portal.jobs import job_run


@shared_task(name="escalations.intake_tasks.heartbeats_check", ignore_result=True)
def heartbeats_check() -> int:
    """Beat job "heartbeat-check": open an incident per overdue heartbeat (idempotent)."""
    with job_run("heartbeat-check"):
        return len(heartbeats.heartbeats_check(now=timezone.now()))


@shared_task(name=kick.INBOX_DRAIN, acks_late=True, ignore_result=True)
def inbox_drain() -> int:
    """Apply accepted events now (sent, debounced, by the web requests that accepted them)."""
    return intake_drain.inbox_drain()


@shared_task(name="escalations.intake_tasks.inbox_drain_periodic", acks_late=True, ignore_result=True)
def inbox_drain_periodic() -> int:
    """Beat job "intake-inbox-drain": the same drain every second, whatever happened to the kicks."""
    with job_run("intake-inbox-drain"):
        return intake_drain.inbox_drain()


@shared_task(name="escalations.intake_tasks.inbox_purge", ignore_result=True)
def inbox_purge() -> int:
    """Beat job "intake-inbox-purge": delete applied events older than BACKSTOP_INBOX_RETENTION."""
    with job_run("intake-inbox-purge"):
        return inbox.inbox_purge(now=timezone.now())
