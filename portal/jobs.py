"""Record periodic job runs so /readyz and the portal can show a stalled beat."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import F
from django.utils import timezone

from portal.models import JobRun


@contextmanager
def job_run(name: str) -> Iterator[None]:
    started = timezone.now()
    JobRun.objects.update_or_create(name=name, defaults={"last_started_at": started})
    try:
        yield
    except Exception as exc:
        JobRun.objects.filter(name=name).update(last_error=repr(exc)[:2000], last_error_at=timezone.now())
        raise
    JobRun.objects.filter(name=name).update(last_success_at=timezone.now(), runs=F("runs") + 1)
