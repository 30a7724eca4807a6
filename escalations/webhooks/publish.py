"""Publishing webhook deliveries by task name (services never import task modules; see
docs/architecture.md). Call after the commit: the rows are the truth and the sweep the safety net."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import current_app

# Deliveries per message; a message sends its deliveries together from a few threads.
CHUNK = 10

# Task names are frozen: workers, queued messages and CELERY_TASK_ROUTES refer to them.
DELIVER = "escalations.webhooks.deliver"
SWEEP = "escalations.webhooks.sweep"
PURGE = "escalations.webhooks.purge"

logger = logging.getLogger(__name__)


def deliveries_publish(delivery_ids: Sequence[int], claimed_at: str | None = None) -> None:
    """Send these deliveries: pending ones are claimed by the task; with `claimed_at` (the sweep's claim)
    the task sends the rows still held under that claim."""
    ids = list(delivery_ids)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        try:
            current_app.tasks[DELIVER].apply_async(args=[chunk, claimed_at])
        except Exception:  # a broker outage must not fail the caller; the sweep catches up
            logger.exception("could not publish webhook deliveries %s; the sweep will", chunk)
