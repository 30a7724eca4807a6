"""Celery wrappers around intake services (thin and idempotent)."""

from celery import shared_task
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from escalations import intake


def _job_run(name: str):
    try:
        from portal.jobs import job_run  # may land on main later

        return job_run(name)
    except ImportError:
        return _JobRun(name)


class _JobRun:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self):
        from portal.models import JobRun

        JobRun.objects.update_or_create(name=self.name, defaults={"last_started_at": timezone.now()})
        return self

    def __exit__(self, exc_type, exc, tb):
        from portal.models import JobRun

        now = timezone.now()
        with transaction.atomic():
            if exc is None:
                JobRun.objects.filter(name=self.name).update(last_success_at=now, runs=F("runs") + 1)
            else:
                JobRun.objects.filter(name=self.name).update(
                    last_error=f"{exc_type.__name__}: {exc}"[:2000], last_error_at=now, runs=F("runs") + 1
                )
        return False


@shared_task(name="escalations.intake_tasks.heartbeats_check", ignore_result=True)
def heartbeats_check() -> int:
    with _job_run("heartbeat-check"):
        return len(intake.heartbeats_check(now=timezone.now()))
