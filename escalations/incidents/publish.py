"""Work published after the commit: page deliveries and engine wake-ups, by task name (services never
import task modules; see docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from escalations import wakeups as wakeups_mod
from escalations.delivery import publish as delivery_publish
from escalations.models import Incident

# Incidents per wake-up message (a message advances its incidents in one transaction).
ADVANCE_CHUNK = 50

# Task names are frozen: workers, queued messages and CELERY_TASK_ROUTES refer to them.
INCIDENTS_ADVANCE = "escalations.tasks.incidents_advance"


def _on_commit_deliver(page_ids_due: list[tuple[int, datetime]]) -> None:
    if not page_ids_due:
        return

    def enqueue() -> None:
        delivery_publish.page_enqueue([pid for pid, _ in page_ids_due], {pid: due for pid, due in page_ids_due})

    # robust: a broker hiccup must not fail the committed work; the sweep re-finds anything due.
    transaction.on_commit(enqueue, robust=True)


def _on_commit_advance(incident: Incident) -> None:
    _on_commit_advance_many([incident])


def _on_commit_advance_many(incidents: Iterable[Incident]) -> None:
    """Wake the engine for these incidents at their next actions; the sweep is the safety net.

    Incidents due in the same second share one message, so a busy sweep publishes a few messages
    per batch rather than one per incident.
    """
    wakeups = [(i.pk, i.next_action_at) for i in incidents if i.next_action_at is not None]
    if not wakeups:
        return
    # robust: a broker hiccup must not fail the committed work; the sweep re-finds anything due.
    transaction.on_commit(lambda: incidents_wake(wakeups=wakeups, now=timezone.now()), robust=True)


def incidents_wake(*, wakeups: Iterable[tuple[int, datetime]], now: datetime) -> int:
    """Publish `incidents_advance` messages timed for these (incident id, due) pairs; returns the
    number of messages. Ids due in the same bucket (BACKSTOP_WAKE_GRANULARITY) share a message.
    Duplicates are harmless: an advance only acts on what is due and not locked elsewhere."""
    groups = wakeups_mod.eta_groups(wakeups, now=now, granularity=settings.BACKSTOP_WAKE_GRANULARITY)
    sent = 0
    for eta, ids in groups.items():
        for chunk in wakeups_mod.chunks(ids, ADVANCE_CHUNK):
            current_app.tasks[INCIDENTS_ADVANCE].apply_async((chunk,), eta=eta)
            sent += 1
    return sent
