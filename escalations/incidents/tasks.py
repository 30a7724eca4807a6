"""Thin, idempotent Celery wrappers around the escalation services."""

from celery import shared_task
from django.conf import settings

from escalations.incidents import advance, publish
from portal.jobs import job_run


@shared_task(name="escalations.tasks.sweep", acks_late=True, ignore_result=True)
def sweep() -> int:
    with job_run("escalation-sweep"):
        advanced, _ = advance.escalations_sweep_with_lookahead(
            lookahead=settings.BACKSTOP_SWEEP_LOOKAHEAD, batch=settings.BACKSTOP_SWEEP_BATCH
        )
        return advanced


@shared_task(name="escalations.tasks.incident_advance", acks_late=True, ignore_result=True)
def incident_advance(incident_id: int) -> None:
    advance.incident_advance(incident_id=incident_id)


@shared_task(name=publish.INCIDENTS_ADVANCE, acks_late=True, ignore_result=True)
def incidents_advance(incident_ids: list[int]) -> int:
    return advance.incidents_advance(incident_ids=incident_ids)
