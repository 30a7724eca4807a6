"""Insights computed live from the rows (open days, SQLite, or no roll-up yet)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from operator import itemgetter

from django.db import connection, transaction

from escalations.engine import MANUAL_STEP
from escalations.models import Incident, Page, TimelineEvent
from portal.insights.metrics import (
    BANDS,
    COUNTED_PAGE_STATUSES,
    Insights,
    PageFacts,
    Percentiles,
    _most_common,
    count_by,
    facts_build,
    first_responder_share,
    hour_band,
    incidents_per_day,
    pages_by_band,
    pages_per_person,
    secondary_page_rate,
    time_to_acknowledge,
    time_to_resolve,
)
from portal.insights.sql import _COUNTS_SQL, _FACTS_SQL, _PAGES_SQL
from portal.models import User


def _scope(team_ids: list[int] | None):
    return Incident.objects.all() if team_ids is None else Incident.objects.filter(team_id__in=team_ids)


def _zones(user_ids) -> dict[int, str]:
    return dict(User.objects.filter(pk__in=list(user_ids)).values_list("pk", "time_zone")) if user_ids else {}


def insights_from_rows(*, team_ids: list[int] | None, since: datetime, now: datetime, days: int) -> Insights:
    """Load incident, timeline and page rows and fold them in Python (any database; O(incidents))."""
    scope = _scope(team_ids).filter(created_at__gte=since, created_at__lt=now)
    incidents = list(scope.values("id", "team_id", "created_at", "source", "severity", "resolved_at", "resolved_by_id"))
    ids = [row["id"] for row in incidents]
    events = (
        list(
            TimelineEvent.objects.filter(
                incident__in=scope, kind__in=["acknowledged", "step_reached", "reassigned"]
            ).values("id", "incident_id", "kind", "data", "at")
        )
        if ids
        else []
    )
    facts = facts_build(incidents, events)
    pages = (
        [
            PageFacts(user_id=uid, at=sent or due, status=status)
            for uid, sent, due, status in Page.objects.filter(incident__in=scope).values_list(
                "user_id", "sent_at", "due_at", "status"
            )
        ]
        if ids
        else []
    )
    zones = _zones({p.user_id for p in pages})
    return Insights(
        since=since,
        until=now,
        incidents=len(facts),
        mtta=time_to_acknowledge(facts),
        mttr=time_to_resolve(facts),
        by_source=count_by(facts, "source"),
        by_severity=count_by(facts, "severity"),
        secondary_rate=secondary_page_rate(facts),
        first_responder_share=first_responder_share(facts),
        pages_per_person=pages_per_person(pages),
        pages_by_band=pages_by_band(pages, zones),
        oncall_hours=None,
        per_day=incidents_per_day(facts, since, days),
    )


def _insights_aggregated(*, team_ids: list[int] | None, since: datetime, now: datetime, days: int) -> Insights:
    """PostgreSQL: three aggregate queries, without JIT (in one transaction)."""
    params = {
        "since": since,
        "until": now,
        "all_teams": team_ids is None,
        "team_ids": team_ids or [],
        "manual_step": MANUAL_STEP,
        "counted": sorted(COUNTED_PAGE_STATUSES),
        "since_day": since.astimezone(UTC).date(),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # Compiling these plans costs more than it saves (0.4-1.5 s for 100,000 incidents).
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_COUNTS_SQL, params)
        counts = cursor.fetchall()
        cursor.execute(_FACTS_SQL, params)
        ack_n, ack_50, ack_95, fix_n, fix_50, fix_95, paged, secondary, resolved_paged, alone = cursor.fetchone()
        cursor.execute(_PAGES_SQL, params)
        buckets = cursor.fetchall()
    by_source = {src: n for g_src, _g_sev, src, _sev, _day, n in counts if not g_src}
    by_severity = {sev: n for _g_src, g_sev, _src, sev, _day, n in counts if not g_sev}
    per_day = [0] * (days + 1)
    for g_src, g_sev, _src, _sev, day, n in counts:
        if g_src and g_sev and 0 <= day <= days:
            per_day[day] = n
    per_person: Counter = Counter()
    bands: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BANDS, 0))
    band_of: dict[tuple[str, int], str] = {}  # people share zones, and pages cluster in time
    for uid, zone, quarter, n in buckets:
        per_person[uid] += n
        band = band_of.get((zone, quarter))
        if band is None:
            band = band_of[(zone, quarter)] = hour_band(datetime.fromtimestamp(quarter * 900, UTC), zone)
        bands[uid][band] += n
    return Insights(
        since=since,
        until=now,
        incidents=sum(by_source.values()),
        mtta=Percentiles(count=ack_n, p50=ack_50, p95=ack_95),
        mttr=Percentiles(count=fix_n, p50=fix_50, p95=fix_95),
        by_source=_most_common(by_source),
        by_severity=_most_common(by_severity),
        secondary_rate=secondary / paged if paged else None,
        first_responder_share=alone / resolved_paged if resolved_paged else None,
        pages_per_person=dict(sorted(sorted(per_person.items()), key=itemgetter(1), reverse=True)),  # as the roll-up
        pages_by_band={u: dict(b) for u, b in bands.items()},
        oncall_hours=None,
        per_day=per_day,
    )
