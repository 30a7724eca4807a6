"""Reads for the integrations page: each integration with its latest event and recent counts, in one
query (correlated subqueries on the (integration, -received_at) index), plus one for events still
waiting in the inbox, so the page costs the same for 1 integration or 50."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, Max, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from escalations.models import Alert, Heartbeat, InboxEvent, Integration, MaintenanceWindow
from rotations.models import Team


@dataclass(frozen=True)
class IntegrationActivity:
    integration: Integration
    last_event_at: datetime | None
    last_incident_id: int | None
    count_24h: int
    count_7d: int
    pending: int


def _alert_count_since(since: datetime) -> Coalesce:
    counted = (
        Alert.objects.filter(integration=OuterRef("pk"), received_at__gte=since)
        .order_by()
        .values("integration")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def integrations_activity_get(*, team: Team, now: datetime) -> list[IntegrationActivity]:
    latest = Alert.objects.filter(integration=OuterRef("pk")).order_by("-received_at", "-id")
    rows = list(
        Integration.objects.filter(team=team)
        .select_related("policy")
        .annotate(
            last_alert_at=Subquery(latest.values("received_at")[:1]),
            last_incident=Subquery(latest.values("incident_id")[:1]),
            count_24h=_alert_count_since(now - timedelta(hours=24)),
            count_7d=_alert_count_since(now - timedelta(days=7)),
        )
        .order_by("name")
    )
    waiting = {
        row["integration_id"]: (row["n"], row["last"])
        for row in InboxEvent.objects.filter(integration__team=team, processed_at__isnull=True)
        .values("integration_id")
        .annotate(n=Count("pk"), last=Max("received_at"))
    }
    result = []
    for i in rows:
        pending, pending_last = waiting.get(i.pk, (0, None))
        last = max((t for t in (i.last_alert_at, pending_last) if t is not None), default=None)
        result.append(
            IntegrationActivity(
                integration=i,
                last_event_at=last,
                last_incident_id=i.last_incident,
                count_24h=i.count_24h,
                count_7d=i.count_7d,
                pending=pending,
            )
        )
    return result


def probe_alert_get(*, integration: Integration, dedup_key: str) -> Alert | None:
    """The Alert a test event produced, once the drain has applied it."""
    return Alert.objects.filter(integration=integration, dedup_key=dedup_key).order_by("-id").first()


def maintenance_windows_get(*, team: Team, now: datetime) -> list[MaintenanceWindow]:
    """Current and upcoming windows, soonest first."""
    return list(
        MaintenanceWindow.objects.filter(team=team, end__gt=now).select_related("integration").order_by("start", "pk")
    )


def heartbeats_get(*, team: Team) -> list[Heartbeat]:
    return list(Heartbeat.objects.filter(team=team).select_related("integration").order_by("name"))


def heartbeat_state(*, heartbeat: Heartbeat, now: datetime) -> str:
    """up, late (past its interval, within grace), down (past interval + grace, or marked down), or
    paused (disabled)."""
    if not heartbeat.enabled:
        return "paused"
    if heartbeat.state == Heartbeat.State.DOWN:
        return "down"
    since = heartbeat.last_ping_at or heartbeat.created_at
    if since + heartbeat.interval + heartbeat.grace < now:
        return "down"
    if since + heartbeat.interval < now:
        return "late"
    return "up"
