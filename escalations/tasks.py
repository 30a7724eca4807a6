"""Thin, idempotent Celery wrappers around the escalation services."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from escalations import services
from portal.jobs import job_run


@shared_task(name="escalations.tasks.sweep", acks_late=True, ignore_result=True)
def sweep() -> int:
    with job_run("escalation-sweep"):
        advanced, _ = services.escalations_sweep_with_lookahead(
            lookahead=settings.BACKSTOP_SWEEP_LOOKAHEAD, batch=settings.BACKSTOP_SWEEP_BATCH
        )
        return advanced


@shared_task(name="escalations.tasks.incident_advance", acks_late=True, ignore_result=True)
def incident_advance(incident_id: int) -> None:
    services.incident_advance(incident_id=incident_id)


@shared_task(name="escalations.tasks.phone_sms_confirmation_send", acks_late=True, ignore_result=True)
def phone_sms_confirmation_send(call_id: int) -> str:
    from escalations import phone

    return phone.call_sms_confirmation_send(call_id=call_id)


@shared_task(name="escalations.tasks.incidents_advance", acks_late=True, ignore_result=True)
def incidents_advance(incident_ids: list[int]) -> int:
    return services.incidents_advance(incident_ids=incident_ids)


@shared_task(name="escalations.tasks.retention_purge", ignore_result=True)
def retention_purge() -> int:
    """Beat job "retention-purge": calls, recordings, outbox rows and payloads past their retention."""
    from escalations import retention

    with job_run("retention-purge"):
        result = retention.retention_purge(now=timezone.now())
        return result.calls + result.outbox + result.payloads
