"""Prometheus multiprocess mode for gunicorn and Celery prefork (no Django needed).

With PROMETHEUS_MULTIPROC_DIR set, every process writes its counters and histograms to its own files
there; whoever answers a scrape merges them. The directory must be empty when the server starts (old
files would add a previous run's counts once more) and must not be shared between gunicorn and a
worker, or between two workers scraped separately, or their samples would be counted twice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

logger = logging.getLogger(__name__)


def multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    return Path(value) if value else None


def multiproc_dir_reset() -> None:
    """Empty the directory at server start (gunicorn's on_starting, the Celery worker's parent)."""
    folder = multiproc_dir()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


def process_dead(pid: int) -> None:
    """A gunicorn worker or pool process exited: drop its live gauges (counters stay counted)."""
    if multiproc_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def worker_metrics_start() -> WSGIServer | None:
    """Serve this Celery worker's samples on WORKER_METRICS_PORT (bound to WORKER_METRICS_ADDR,
    default 127.0.0.1), when set."""
    multiproc_dir_reset()
    port = os.environ.get("WORKER_METRICS_PORT", "")
    if not port:
        return None
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    registry = REGISTRY
    if multiproc_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    addr = os.environ.get("WORKER_METRICS_ADDR", "127.0.0.1")
    try:
        server, _ = start_http_server(int(port), addr=addr, registry=registry)
    except (OSError, ValueError) as exc:  # metrics must never keep a worker from paging
        logger.error("worker metrics could not listen on %s:%s: %s", addr, port, exc)
        return None
    logger.info("worker metrics on %s:%s", addr, port)
    return server
