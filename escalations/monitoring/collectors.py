"""Gauges computed from the database and the broker when Prometheus scrapes (web processes only).

Each is one cheap query on an index: open incidents per team and urgency (the status index), the intake
inbox's unapplied events (its partial index on pending ids), JobRun rows (a few dozen), the switch row,
and one LLEN-style size per Celery queue. A failing source is reported as `backstop_collector_up{source}
0` instead of failing the scrape, so the other facts still arrive when the database or broker does not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from escalations.models import InboxEvent, Incident
from escalations.monitoring import health, services
from portal.models import JobRun

logger = logging.getLogger(__name__)


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


def _incidents() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "backstop_incidents_open",
        "Incidents not resolved, by team, urgency and status",
        labels=["team", "urgency", "status"],
    )
    rows = (
        Incident.objects.exclude(status=Incident.Status.RESOLVED)
        .values_list("team__slug", "urgency", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for team, urgency, status, n in rows:
        gauge.add_metric([team, urgency, status], n)
    yield gauge


def _inbox(now: datetime) -> Iterator[Metric]:
    pending = InboxEvent.objects.filter(processed_at__isnull=True).aggregate(n=Count("id"), oldest=Min("received_at"))
    yield GaugeMetricFamily("backstop_inbox_pending", "Intake events stored but not applied yet", value=pending["n"])
    yield GaugeMetricFamily(
        "backstop_inbox_oldest_pending_age_seconds",
        "Age of the oldest unapplied intake event (0 when none)",
        value=_age(now, pending["oldest"]) or 0.0,
    )


def _jobs(now: datetime) -> Iterator[Metric]:
    # The label is `name`, not `job`: Prometheus's own target label `job` would rename it on scrape.
    age = GaugeMetricFamily(
        "backstop_job_last_success_age_seconds", "Seconds since each periodic job last succeeded", labels=["name"]
    )
    runs = GaugeMetricFamily("backstop_job_runs", "Successful runs of each periodic job recorded", labels=["name"])
    workers = GaugeMetricFamily(
        "backstop_workers_seen",
        "1 when a worker ran this queue's heartbeat within WORKER_STALE_AFTER_SECONDS",
        labels=["queue"],
    )
    rows = {name: (last, n) for name, last, n in JobRun.objects.values_list("name", "last_success_at", "runs")}
    for name, (last, n) in sorted(rows.items()):
        if (seconds := _age(now, last)) is not None:
            age.add_metric([name], seconds)
        runs.add_metric([name], n)
    stale_after = settings.BACKSTOP_WORKER_STALE_AFTER.total_seconds()
    for queue in health.HEARTBEAT_QUEUES:
        seen = _age(now, rows.get(health.worker_job_name(queue), (None, 0))[0])
        workers.add_metric([queue], 1.0 if seen is not None and seen <= stale_after else 0.0)
    yield age
    yield runs
    yield workers
    switch = services.switch_get()
    last_ping = _age(now, switch.last_pinged_at) if switch else None
    if last_ping is not None:
        yield GaugeMetricFamily(
            "backstop_deadman_last_ping_age_seconds", "Seconds since the dead man's switch last pinged", value=last_ping
        )


def _queues() -> Iterator[Metric]:
    gauge = GaugeMetricFamily("backstop_queue_depth", "Messages waiting in each Celery queue", labels=["queue"])
    for queue, depth in health.queue_depths().items():
        gauge.add_metric([queue], depth)
    yield gauge


class BackstopCollector(Collector):
    """Registered on the registry a scrape builds (never globally: import must not touch the database)."""

    def __init__(self, *, broker: bool = True) -> None:
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        up = GaugeMetricFamily("backstop_collector_up", "1 when a scrape-time source answered", labels=["source"])
        sources = [("incidents", lambda: _incidents()), ("inbox", lambda: _inbox(now)), ("jobs", lambda: _jobs(now))]
        if self.broker:
            sources.append(("broker", _queues))
        for name, source in sources:
            try:
                metrics = list(source())
            except Exception as exc:  # reported as a gauge: the other sources still answer
                logger.warning("metrics source %s failed: %s", name, exc.__class__.__name__)
                up.add_metric([name], 0.0)
                continue
            up.add_metric([name], 1.0)
            yield from metrics
        yield up
