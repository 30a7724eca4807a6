"""The facts that say Backstop can page: the database answers, the broker answers, the beat ticks and a
worker consumes each queue that pages depend on.

Workers prove themselves by running a heartbeat task that beat sends to each queue
(`escalations.monitoring.tasks.worker_heartbeat`), recorded as the JobRun `worker:<queue>`: a worker
that is gone, wedged or cut off from the broker stops refreshing it. One periodic beat job per queue is
cheap, needs no Celery control channel (`--without-gossip` workers are not seen by inspect) and works on
every broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from kombu.exceptions import ChannelError

from config.celery import app
from config.health import broker_problem, database_problem
from portal.models import JobRun

SWEEP_JOB = "escalation-sweep"
# The dead man's switch needs a consumer on both: the engine's queue and the pages' queue.
PAGING_QUEUES = ("escalations", "deliveries")
# Every queue beat sends a heartbeat to (metrics show all of them).
HEARTBEAT_QUEUES = ("escalations", "deliveries", "periodic", "celery", "webhooks")


def worker_job_name(queue: str) -> str:
    return f"worker:{queue}"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def database_check() -> Check:
    problem = database_problem()
    return Check("database", problem is None, problem or "database answers")


def broker_check() -> Check:
    problem = broker_problem()
    return Check("broker", problem is None, problem or "broker answers")


def _fresh(last: datetime | None, now: datetime, stale_after_seconds: float) -> bool:
    return last is not None and (now - last).total_seconds() <= stale_after_seconds


def job_checks(*, now: datetime) -> list[Check]:
    """The beat (its escalation sweep) and a worker on each paging queue, from their JobRun rows."""
    names = [SWEEP_JOB, *(worker_job_name(q) for q in PAGING_QUEUES)]
    last = dict(JobRun.objects.filter(name__in=names).values_list("name", "last_success_at"))
    beat_after = settings.BACKSTOP_BEAT_STALE_AFTER.total_seconds()
    worker_after = settings.BACKSTOP_WORKER_STALE_AFTER.total_seconds()
    sweep = last.get(SWEEP_JOB)
    checks = [
        Check(
            "beat",
            _fresh(sweep, now, beat_after),
            "beat: the escalation sweep has never run"
            if sweep is None
            else f"beat: the escalation sweep last ran at {sweep.isoformat(timespec='seconds')}",
        )
    ]
    for queue in PAGING_QUEUES:
        seen = last.get(worker_job_name(queue))
        checks.append(
            Check(
                f"worker:{queue}",
                _fresh(seen, now, worker_after),
                f"worker on {queue}: never seen"
                if seen is None
                else f"worker on {queue}: last seen at {seen.isoformat(timespec='seconds')}",
            )
        )
    return checks


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (one size query per queue; raises when the broker is down)."""
    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        # One quick try: a scrape must not wait out kombu's retry intervals while Redis is down.
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=0.5)
        channel = conn.default_channel
        for queue in settings.CELERY_TASK_QUEUES:
            try:
                # A passive declare answers the ready-message count (kombu sums Redis's priority lists).
                _, depth, _ = channel.queue_declare(queue=queue.name, passive=True)
            except ChannelError:  # never declared: nobody consumed or published to it yet
                depth = 0
            depths[queue.name] = depth
    return depths


def checks_run(*, now: datetime, broker: bool = True) -> list[Check]:
    """Every check; the JobRun ones only when the database answers."""
    database = database_check()
    checks = [database, *([broker_check()] if broker else [])]
    if database.ok:
        checks += job_checks(now=now)
    return checks
