"""Thin Celery wrappers: the worker heartbeats and the dead man's switch (beat jobs)."""

from celery import shared_task
from django.utils import timezone

from escalations.monitoring import health, publish, services
from portal.jobs import job_run


@shared_task(name=publish.WORKER_HEARTBEAT, ignore_result=True)
def worker_heartbeat(queue: str) -> None:
    """Sent by beat to one queue: running it proves a worker consumes that queue."""
    if queue in health.HEARTBEAT_QUEUES:  # a fixed set of JobRun rows, whatever a message says
        with job_run(health.worker_job_name(queue)):
            pass


@shared_task(name=publish.DEADMAN, ignore_result=True)
def deadman() -> str:
    with job_run("deadman-switch"):
        return services.deadman_run(now=timezone.now()).last_result
