"""Heartbeats: a ping records life; the check opens an incident when one goes quiet."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escalations.incidents import services
from escalations.intake.apply import VIA, maintenance_active
from escalations.models import (
    Heartbeat,
    Incident,
    TimelineEvent,
)

# --- Heartbeats ----------------------------------------------------------------------------------


def _heartbeat_dedup_key(heartbeat: Heartbeat) -> str:
    return f"heartbeat:{heartbeat.pk}"


def heartbeat_ping(*, heartbeat: Heartbeat, now: datetime | None = None) -> bool:
    """Record a ping; resolves the open missed-heartbeat incident. Returns True if it was down."""
    now = now or timezone.now()
    with transaction.atomic():
        hb = Heartbeat.objects.select_for_update(of=("self",)).select_related("open_incident").get(pk=heartbeat.pk)
        was_down = hb.state == Heartbeat.State.DOWN
        incident = hb.open_incident
        if incident is not None and incident.status != Incident.Status.RESOLVED:
            services.incident_resolve(incident=incident, by=None, via=VIA, now=now, note="Heartbeat received again")
        if hb.last_ping_at is None or now > hb.last_ping_at:
            hb.last_ping_at = now
        hb.state = Heartbeat.State.UP
        hb.open_incident = None
        hb.save(update_fields=["last_ping_at", "state", "open_incident"])
    heartbeat.refresh_from_db()
    return was_down


def heartbeats_check(*, now: datetime | None = None) -> list[Incident]:
    """Open one incident per overdue heartbeat. Idempotent: a heartbeat that is down stays down
    (and is skipped) until it pings again; concurrent runs skip each other's locked rows."""
    now = now or timezone.now()
    opened: list[Incident] = []
    candidates = Heartbeat.objects.filter(enabled=True, state=Heartbeat.State.UP).values_list(
        "pk", "last_ping_at", "created_at", "interval", "grace"
    )
    overdue = [pk for pk, last, created, interval, grace in candidates if (last or created) + interval + grace < now]
    for pk in overdue:
        with transaction.atomic():
            hb = (
                Heartbeat.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("team", "integration__policy")
                .filter(pk=pk, enabled=True, state=Heartbeat.State.UP)
                .first()
            )
            if hb is None or (hb.last_ping_at or hb.created_at) + hb.interval + hb.grace >= now:
                continue
            last = hb.last_ping_at.isoformat() if hb.last_ping_at else "never"
            result = services.incident_trigger(
                team=hb.team,
                title=f"Missed heartbeat: {hb.name}",
                details=f"No ping since {last}; expected every {hb.interval} (grace {hb.grace}).",
                severity=Incident.Severity.CRITICAL,
                source=Incident.Source.HEARTBEAT,
                dedup_key=_heartbeat_dedup_key(hb),
                payload={"heartbeat": hb.pk, "last_ping_at": last},
                policy=hb.integration.policy if hb.integration else None,
                suppressed=maintenance_active(team=hb.team, integration=hb.integration, now=now),
                via=TimelineEvent.Via.SYSTEM,
                now=now,
            )
            hb.state = Heartbeat.State.DOWN
            hb.open_incident = result.incident
            hb.save(update_fields=["state", "open_incident"])
            opened.append(result.incident)
    return opened
