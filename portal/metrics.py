"""Insights: plain functions over incident, timeline and page rows (no ORM inside the maths).

`insights_load` fetches the rows (a fixed number of queries); everything else is pure and takes
`now` or explicit windows, so it is tested with hand-computed fixtures.
"""

from __future__ import annotations

import math
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MANUAL_STEP = 32000  # escalations.services.MANUAL_STEP: reassign pages, not policy steps
SECONDARY_BAND = (0.10, 0.20)
FIRST_RESPONDER_BAND = (0.70, 0.80)
COUNTED_PAGE_STATUSES = {"sent", "delivered", "answered", "failed", "no_answer", "busy", "sending"}


@dataclass
class IncidentFacts:
    id: int
    team_id: int
    created_at: datetime
    source: str
    severity: str
    first_ack_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by_id: int | None = None
    max_step: int = -1  # highest policy step index reached (reassign pages ignored)
    first_paged_user_ids: frozenset[int] = frozenset()
    reassigned: bool = False


@dataclass
class PageFacts:
    user_id: int
    at: datetime
    status: str


@dataclass
class Percentiles:
    count: int
    p50: float | None
    p95: float | None


@dataclass
class Insights:
    since: datetime
    until: datetime
    incidents: int
    mtta: Percentiles
    mttr: Percentiles
    by_source: dict[str, int]
    by_severity: dict[str, int]
    secondary_rate: float | None
    first_responder_share: float | None
    pages_per_person: dict[int, int]
    pages_by_band: dict[int, dict[str, int]]
    oncall_hours: dict[int, float] | None
    per_day: list[int] = field(default_factory=list)


# ------------------------------------------------------------------------------- pure maths


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def _percentiles(seconds: list[float]) -> Percentiles:
    return Percentiles(count=len(seconds), p50=percentile(seconds, 50), p95=percentile(seconds, 95))


def time_to_acknowledge(incidents: Iterable[IncidentFacts]) -> Percentiles:
    """Seconds from opening to the first acknowledgement (incidents never acknowledged are left out)."""
    return _percentiles([(i.first_ack_at - i.created_at).total_seconds() for i in incidents if i.first_ack_at])


def time_to_resolve(incidents: Iterable[IncidentFacts]) -> Percentiles:
    return _percentiles([(i.resolved_at - i.created_at).total_seconds() for i in incidents if i.resolved_at])


def count_by(incidents: Iterable[IncidentFacts], attr: str) -> dict[str, int]:
    return dict(Counter(getattr(i, attr) for i in incidents).most_common())


def secondary_page_rate(incidents: Sequence[IncidentFacts]) -> float | None:
    """Share of paged incidents that reached step index >= 1 (the secondary). Healthy: 10-20 %."""
    paged = [i for i in incidents if i.max_step >= 0]
    if not paged:
        return None
    return sum(1 for i in paged if i.max_step >= 1) / len(paged)


def first_responder_share(incidents: Sequence[IncidentFacts]) -> float | None:
    """Share of resolved, paged incidents resolved by a first-paged person with no escalation or
    reassignment. Healthy: 70-80 %."""
    resolved = [i for i in incidents if i.resolved_at is not None and i.first_paged_user_ids]
    if not resolved:
        return None
    alone = [
        i for i in resolved
        if i.max_step == 0 and not i.reassigned and i.resolved_by_id in i.first_paged_user_ids
    ]
    return len(alone) / len(resolved)


def pages_per_person(pages: Iterable[PageFacts]) -> dict[int, int]:
    return dict(Counter(p.user_id for p in pages if p.status in COUNTED_PAGE_STATUSES).most_common())


def hour_band(moment: datetime, tz_name: str) -> str:
    """business (08-18 Mon-Fri), sleep (22-08 any day) or evening (the rest), in the person's zone."""
    try:
        local = moment.astimezone(zoneinfo.ZoneInfo(tz_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        local = moment
    if local.hour >= 22 or local.hour < 8:
        return "sleep"
    if local.weekday() < 5 and 8 <= local.hour < 18:
        return "business"
    return "evening"


BANDS = ("business", "evening", "sleep")


def pages_by_band(pages: Iterable[PageFacts], time_zones: dict[int, str]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BANDS, 0))
    for p in pages:
        if p.status in COUNTED_PAGE_STATUSES:
            out[p.user_id][hour_band(p.at, time_zones.get(p.user_id, "UTC"))] += 1
    return {uid: dict(bands) for uid, bands in out.items()}


def oncall_hours(shifts: Iterable, since: datetime, until: datetime) -> dict[int, float]:
    """Hours per person from resolver shifts (objects with user_id/start/end), clipped to the window."""
    hours: dict[int, float] = defaultdict(float)
    for sh in shifts:
        if sh.user_id is None:
            continue
        start, end = max(sh.start, since), min(sh.end, until)
        if end > start:
            hours[sh.user_id] += (end - start).total_seconds() / 3600
    return dict(sorted(hours.items(), key=lambda kv: -kv[1]))


def incidents_per_day(incidents: Iterable[IncidentFacts], since: datetime, days: int) -> list[int]:
    counts = [0] * days
    for i in incidents:
        index = int((i.created_at - since).total_seconds() // 86400)
        if 0 <= index < days:
            counts[index] += 1
    return counts


def in_band(value: float | None, band: tuple[float, float]) -> bool | None:
    return None if value is None else band[0] <= value <= band[1]


# ---------------------------------------------------------------------------- loading rows


def facts_build(incidents: list[dict], events: list[dict]) -> list[IncidentFacts]:
    """Fold timeline rows (kind, data, at, incident_id) into per-incident facts."""
    by_id = {
        row["id"]: IncidentFacts(
            id=row["id"], team_id=row["team_id"], created_at=row["created_at"], source=row["source"],
            severity=row["severity"], resolved_at=row["resolved_at"], resolved_by_id=row["resolved_by_id"],
        )
        for row in incidents
    }
    first_paged: dict[int, tuple] = {}
    for ev in sorted(events, key=lambda e: (e["at"], e.get("id", 0))):
        facts = by_id.get(ev["incident_id"])
        if facts is None:
            continue
        kind = ev["kind"]
        if kind == "acknowledged" and facts.first_ack_at is None:
            facts.first_ack_at = ev["at"]
        elif kind == "step_reached":
            data = ev["data"] or {}
            step = data.get("step", 0)
            if step != MANUAL_STEP:
                facts.max_step = max(facts.max_step, step)
                if facts.id not in first_paged:
                    first_paged[facts.id] = tuple(data.get("user_ids", ()))
        elif kind == "reassigned":
            facts.reassigned = True
    for incident_id, users in first_paged.items():
        by_id[incident_id].first_paged_user_ids = frozenset(users)
    return list(by_id.values())


def insights_load(*, team_ids: Iterable[int], now: datetime, days: int, with_oncall: bool = True) -> Insights:
    """Everything the Insights page shows: five queries (plus the roster's) whatever the data size."""
    from escalations.models import Incident, Page, TimelineEvent
    from portal.models import User

    team_ids = list(team_ids)
    since = now - timedelta(days=days)
    incidents = list(
        Incident.objects.filter(team_id__in=team_ids, created_at__gte=since, created_at__lt=now)
        .values("id", "team_id", "created_at", "source", "severity", "resolved_at", "resolved_by_id")
    )
    ids = [row["id"] for row in incidents]
    events = list(
        TimelineEvent.objects.filter(incident_id__in=ids, kind__in=["acknowledged", "step_reached", "reassigned"])
        .values("id", "incident_id", "kind", "data", "at")
    ) if ids else []
    facts = facts_build(incidents, events)
    pages = [
        PageFacts(user_id=uid, at=sent or due, status=status)
        for uid, sent, due, status in Page.objects.filter(incident_id__in=ids)
        .values_list("user_id", "sent_at", "due_at", "status")
    ] if ids else []
    user_ids = {p.user_id for p in pages}
    zones = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "time_zone")) if user_ids else {}
    hours = None
    if with_oncall:
        from rotations.selectors import teams_shifts_get

        shifts = teams_shifts_get(team_ids=team_ids, since=since, until=now)[1]  # one load for every team
        hours = oncall_hours(shifts, since, now)
    return Insights(
        since=since, until=now, incidents=len(facts),
        mtta=time_to_acknowledge(facts), mttr=time_to_resolve(facts),
        by_source=count_by(facts, "source"), by_severity=count_by(facts, "severity"),
        secondary_rate=secondary_page_rate(facts), first_responder_share=first_responder_share(facts),
        pages_per_person=pages_per_person(pages), pages_by_band=pages_by_band(pages, zones),
        oncall_hours=hours, per_day=incidents_per_day(facts, since, days),
    )
