"""The incident timeline: one helper to record an event, one to name its actor, and `timeline_recorded`,
the one place that tells the world outside the incident (outgoing webhooks) about rows just written,
inside their transaction: what they write commits or rolls back with the change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from escalations.models import Incident, TimelineEvent
from escalations.slack import publish as slack_publish
from escalations.webhooks.events import webhook_events_record
from portal.models import User

# ------------------------------------------------------------------------------- timeline


def timeline_record(
    *,
    incident: Incident,
    kind: str,
    message: str,
    actor: User | None = None,
    via: str = TimelineEvent.Via.SYSTEM,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TimelineEvent:
    # No savepoint inside a caller's transaction; a transaction of its own otherwise (notes), so the row
    # and what timeline_recorded writes for it commit together.
    with transaction.atomic(savepoint=False):
        event = TimelineEvent.objects.create(
            incident=incident,
            kind=kind,
            message=message,
            actor=actor,
            via=via,
            data=data or {},
            at=at or timezone.now(),
        )
        timeline_recorded([event])
    return event


def timeline_record_many(events: Sequence[TimelineEvent]) -> list[TimelineEvent]:
    """Save many rows at once (the engine's batches, delivery outcomes)."""
    with transaction.atomic(savepoint=False):
        created = TimelineEvent.objects.bulk_create(events, batch_size=1000)
        timeline_recorded(created)
    return created


def timeline_recorded(events: Sequence[TimelineEvent]) -> None:
    """Rows just saved, in the transaction that saved them (they need their ids)."""
    webhook_events_record(events=events)
    slack_publish.incidents_changed(events=[(e.incident_id, e.kind) for e in events])


def _name(user: User | None) -> str:
    return user.display_name if user is not None else "Backstop"
