"""Publishing page deliveries to the deliveries queue, in chunks, by task name (services never import task
modules; see docs/architecture.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from celery import current_app
from django.conf import settings
from django.utils import timezone

from escalations.wakeups import eta_groups

if TYPE_CHECKING:
    from escalations.delivery.record import DeliveryOutcome

# Pages due within the same wake-up bucket travel in one message, a few at a time: a sweep that pages a
# thousand people publishes dozens of messages, not thousands, and workers still share the load.
ENQUEUE_CHUNK = 20

# Task names are frozen: workers, queued messages and CELERY_TASK_ROUTES refer to them.
DELIVER_PAGE = "escalations.deliver_page"
DELIVER_PAGES = "escalations.deliver_pages"

logger = logging.getLogger(__name__)


def page_enqueue(page_ids: Iterable[int], eta_by_id: Mapping[int, datetime] | None = None) -> None:
    """Enqueue delivery. Call from `transaction.on_commit` (the engine does) or outside a transaction."""
    eta_by_id = eta_by_id or {}
    # Pages due beyond MAX_ETA are left out: the page-reconcile sweep dispatches them once due.
    groups = eta_groups(
        ((page_id, eta_by_id.get(page_id)) for page_id in page_ids),
        now=timezone.now(),
        granularity=settings.BACKSTOP_WAKE_GRANULARITY,
    )
    for eta, ids in groups.items():
        for start in range(0, len(ids), ENQUEUE_CHUNK):
            chunk = ids[start : start + ENQUEUE_CHUNK]
            try:
                if len(chunk) == 1:
                    current_app.tasks[DELIVER_PAGE].apply_async(args=[chunk[0]], eta=eta)
                else:
                    current_app.tasks[DELIVER_PAGES].apply_async(args=[chunk], eta=eta)
            except Exception:  # a broker outage must not fail the caller; the sweep catches up
                logger.exception("could not enqueue delivery of pages %s; the sweep will", chunk)


def outcomes_follow_up(outcomes: Iterable[DeliveryOutcome]) -> None:
    """Time the next attempt of what must wait (retry, throttle) and wake what a failure made due."""
    later: dict[int, datetime] = {}
    promoted: list[int] = []
    for outcome in outcomes:
        if outcome.retry_at is not None:
            # A carrier that must retry released its riders: they wait with it, to be bundled again.
            ids = [outcome.page_id, *outcome.bundled_page_ids] if outcome.result == "retry" else [outcome.page_id]
            later.update(dict.fromkeys(ids, outcome.retry_at))
        promoted += outcome.promoted_page_ids
    if later:
        page_enqueue(list(later), later)
    if promoted:
        page_enqueue(promoted)
