"""What the staff System page shows: the facts behind /readyz, each queue's worker, every periodic job
and the dead man's switch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings

from escalations.models import SwitchPing
from escalations.monitoring import health
from portal.models import JobRun


@dataclass(frozen=True)
class QueueState:
    name: str
    depth: int | None  # None: the broker did not answer
    worker_seen_at: datetime | None
    worker_ok: bool


@dataclass(frozen=True)
class SystemStatus:
    checks: list[health.Check]
    queues: list[QueueState]
    jobs: list[JobRun]
    switch: SwitchPing | None
    # Only the host: the rest of a ping URL is a secret (healthchecks.io's check id).
    switch_host: str

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)


def system_status_get(*, now: datetime) -> SystemStatus:
    checks = health.checks_run(now=now)
    try:
        depths: dict[str, int] = health.queue_depths()
    except Exception:  # shown as unknown; the broker check says why
        depths = {}
    jobs = list(JobRun.objects.order_by("name"))
    seen = {job.name: job.last_success_at for job in jobs}
    stale_after = settings.BACKSTOP_WORKER_STALE_AFTER
    queues = []
    for queue in health.HEARTBEAT_QUEUES:
        at = seen.get(health.worker_job_name(queue))
        queues.append(QueueState(queue, depths.get(queue), at, at is not None and now - at <= stale_after))
    url = settings.BACKSTOP_DEADMAN_URL
    return SystemStatus(
        checks=checks,
        queues=queues,
        jobs=jobs,
        switch=SwitchPing.objects.filter(name="deadman").first(),
        switch_host=urlsplit(url).netloc if url else "",
    )
