"""The incident timeline: one helper to record an event, one to name its actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from escalations.models import Incident, TimelineEvent
from escalations.slack import publish as slack_publish
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
    event = TimelineEvent.objects.create(
        incident=incident,
        kind=kind,
        message=message,
        actor=actor,
        via=via,
        data=data or {},
        at=at or timezone.now(),
    )
    slack_publish.incident_changed(incident_id=incident.pk, kind=kind)
    return event


def _name(user: User | None) -> str:
    return user.display_name if user is not None else "Backstop"
