"""Insights: plain functions over incident, timeline and page rows (no ORM inside the maths).

`insights_load` fetches the rows (a fixed number of queries); everything else is pure and takes
`now` or explicit windows, so it is tested with hand-computed fixtures. On PostgreSQL the closed days
of a period come from a roll-up (portal.rollup) as a `Tally`: counts and duration histograms that add
up, so percentiles over a roll-up are within `PERCENTILE_ERROR` of the exact ones.
"""

from __future__ import annotations

import math
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

from escalations.engine import MANUAL_STEP

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
    per_day: list[int] = field(default_factory=list)  # UTC calendar days from since's to now's
    approximate: bool = False  # percentiles from the roll-up's histograms (within PERCENTILE_ERROR)


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
    alone = [i for i in resolved if i.max_step == 0 and not i.reassigned and i.resolved_by_id in i.first_paged_user_ids]
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
    """Incidents per UTC calendar day, from since's day to the day `days` later (days + 1 of them:
    the first and the last are partial), so that they add up over days and teams."""
    first = since.astimezone(UTC).date()
    counts = [0] * (days + 1)
    for i in incidents:
        index = (i.created_at.astimezone(UTC).date() - first).days
        if 0 <= index <= days:
            counts[index] += 1
    return counts


def in_band(value: float | None, band: tuple[float, float]) -> bool | None:
    return None if value is None else band[0] <= value <= band[1]


# ------------------------------------------------------------------- histograms and tallies

# Durations go into log-spaced buckets: bucket 0 holds [0, 1 s), bucket b >= 1 holds
# [r^(b-1), r^b) with r = 1.01 and stands for its geometric middle r^(b-0.5). A percentile read
# from the histogram interpolates between the same ranks as `percentile` does, between values each
# off by at most sqrt(r) - 1 of themselves, so it is within PERCENTILE_ERROR of the exact one (plus
# half a second below 1 s). About 1,700 buckets span a year; a period holds a few hundred.
HISTOGRAM_RATIO = 1.01
PERCENTILE_ERROR = math.sqrt(HISTOGRAM_RATIO) - 1  # 0.4988 %
PERCENTILE_ERROR_SECONDS = 0.5
_LOG_RATIO = math.log(HISTOGRAM_RATIO)


def duration_bucket(seconds: float) -> int:
    """The histogram bucket of a duration (negative ones, which never happen, count as under 1 s)."""
    return 0 if seconds < 1 else 1 + math.floor(math.log(seconds) / _LOG_RATIO)


def bucket_value(bucket: int) -> float:
    return 0.5 if bucket == 0 else HISTOGRAM_RATIO ** (bucket - 0.5)


def histogram_percentile(histogram: Mapping[int, int], p: float) -> float | None:
    """`percentile` over a histogram: linear interpolation between the closest ranks' buckets."""
    n = sum(histogram.values())
    if not n:
        return None
    rank = (n - 1) * p / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    at_lo = seen = 0
    for bucket in sorted(histogram):
        if seen <= lo < seen + histogram[bucket]:
            at_lo = bucket_value(bucket)
        seen += histogram[bucket]
        if hi < seen:
            return at_lo + (bucket_value(bucket) - at_lo) * (rank - lo)
    raise AssertionError("unreachable: hi < n")


def _histogram_percentiles(histogram: Mapping[int, int]) -> Percentiles:
    return Percentiles(
        count=sum(histogram.values()), p50=histogram_percentile(histogram, 50), p95=histogram_percentile(histogram, 95)
    )


BAND_INDEX = {band: k for k, band in enumerate(BANDS)}


@dataclass
class Tally:
    """Everything Insights shows, in a form that adds up over days and teams (on-call hours aside)."""

    incidents: int = 0
    by_source: Counter = field(default_factory=Counter)
    by_severity: Counter = field(default_factory=Counter)
    per_day: Counter = field(default_factory=Counter)  # UTC date -> incidents opened
    ack: Counter = field(default_factory=Counter)  # duration bucket -> incidents (time to acknowledge)
    fix: Counter = field(default_factory=Counter)  # duration bucket -> incidents (time to resolve)
    paged: int = 0
    secondary: int = 0
    resolved_paged: int = 0
    alone: int = 0
    people: dict[int, list[int]] = field(default_factory=dict)  # user -> pages [business, evening, sleep]

    def add(self, other: Tally) -> Tally:
        self.incidents += other.incidents
        for mine, theirs in (
            (self.by_source, other.by_source),
            (self.by_severity, other.by_severity),
            (self.per_day, other.per_day),
            (self.ack, other.ack),
            (self.fix, other.fix),
        ):
            mine.update(theirs)
        self.paged += other.paged
        self.secondary += other.secondary
        self.resolved_paged += other.resolved_paged
        self.alone += other.alone
        for uid, bands in other.people.items():
            self.person_add(uid, bands)
        return self

    def person_add(self, uid: int, bands: Sequence[int]) -> None:
        mine = self.people.get(uid)
        if mine is None:
            self.people[uid] = list(bands)
        else:
            for k, n in enumerate(bands):
                mine[k] += n

    def to_json(self) -> dict:
        return {
            "incidents": self.incidents,
            "source": dict(self.by_source),
            "severity": dict(self.by_severity),
            "day": {d.isoformat(): n for d, n in self.per_day.items()},
            "ack": {str(b): n for b, n in self.ack.items()},
            "fix": {str(b): n for b, n in self.fix.items()},
            "paged": self.paged,
            "secondary": self.secondary,
            "resolved_paged": self.resolved_paged,
            "alone": self.alone,
            "people": [[uid, *bands] for uid, bands in sorted(self.people.items())],
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Tally:
        return cls(
            incidents=data["incidents"],
            by_source=Counter(data["source"]),
            by_severity=Counter(data["severity"]),
            per_day=Counter({date.fromisoformat(d): n for d, n in data["day"].items()}),
            ack=Counter({int(b): n for b, n in data["ack"].items()}),
            fix=Counter({int(b): n for b, n in data["fix"].items()}),
            paged=data["paged"],
            secondary=data["secondary"],
            resolved_paged=data["resolved_paged"],
            alone=data["alone"],
            people={row[0]: row[1:] for row in data["people"]},
        )


def insights_from_tally(tally: Tally, *, since: datetime, now: datetime, days: int) -> Insights:
    first = since.astimezone(UTC).date()
    totals = sorted({uid: sum(bands) for uid, bands in tally.people.items()}.items())
    people = [(uid, tally.people[uid]) for uid, _ in sorted(totals, key=itemgetter(1), reverse=True)]  # stable
    return Insights(
        since=since,
        until=now,
        incidents=tally.incidents,
        mtta=_histogram_percentiles(tally.ack),
        mttr=_histogram_percentiles(tally.fix),
        by_source=_most_common(tally.by_source),
        by_severity=_most_common(tally.by_severity),
        secondary_rate=tally.secondary / tally.paged if tally.paged else None,
        first_responder_share=tally.alone / tally.resolved_paged if tally.resolved_paged else None,
        pages_per_person={uid: sum(bands) for uid, bands in people},
        pages_by_band={uid: {"business": b, "evening": e, "sleep": s} for uid, (b, e, s) in people},
        oncall_hours=None,
        per_day=[tally.per_day.get(first + timedelta(days=k), 0) for k in range(days + 1)],
        approximate=True,
    )


# ---------------------------------------------------------------------------- loading rows


def facts_build(incidents: list[dict], events: list[dict]) -> list[IncidentFacts]:
    """Fold timeline rows (kind, data, at, incident_id) into per-incident facts."""
    by_id = {
        row["id"]: IncidentFacts(
            id=row["id"],
            team_id=row["team_id"],
            created_at=row["created_at"],
            source=row["source"],
            severity=row["severity"],
            resolved_at=row["resolved_at"],
            resolved_by_id=row["resolved_by_id"],
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


ONCALL_TEAMS_MAX = 25  # on-call hours resolve every shift of every team in scope: only for a few teams


def insights_load(*, team_ids: Iterable[int] | None, now: datetime, days: int, with_oncall: bool = True) -> Insights:
    """Everything the Insights page shows, for the teams given (None: every team).

    On PostgreSQL the closed days come from the roll-up when it has been made for today (portal.rollup:
    a few rows, whatever the number of incidents) and the rest is aggregated live; without a roll-up
    the database aggregates the whole period (counts, exact percentiles, step facts, 15-minute page
    buckets) in a fixed number of queries. Elsewhere (the SQLite demo) the rows are loaded and folded
    in Python. All three give the same numbers, the roll-up's percentiles within PERCENTILE_ERROR.
    """
    from django.db import connection

    team_ids = None if team_ids is None else sorted(set(team_ids))
    since = now - timedelta(days=days)
    if connection.vendor == "postgresql":
        from portal import rollup

        insights = rollup.insights_rolled_load(team_ids=team_ids, now=now, days=days)
        if insights is None:
            insights = _insights_aggregated(team_ids=team_ids, since=since, now=now, days=days)
    else:
        insights = insights_from_rows(team_ids=team_ids, since=since, now=now, days=days)
    if with_oncall:
        from rotations.selectors import teams_shifts_get

        shifts = teams_shifts_get(team_ids=team_ids, since=since, until=now)[1]  # one load for every team
        insights.oncall_hours = oncall_hours(shifts, since, now)
    return insights


def _scope(team_ids: list[int] | None):
    from escalations.models import Incident

    return Incident.objects.all() if team_ids is None else Incident.objects.filter(team_id__in=team_ids)


def _zones(user_ids) -> dict[int, str]:
    from portal.models import User

    return dict(User.objects.filter(pk__in=list(user_ids)).values_list("pk", "time_zone")) if user_ids else {}


def insights_from_rows(*, team_ids: list[int] | None, since: datetime, now: datetime, days: int) -> Insights:
    """Load incident, timeline and page rows and fold them in Python (any database; O(incidents))."""
    from escalations.models import Page, TimelineEvent

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


# The incidents in scope, as a CTE every aggregate below starts from.
_SCOPE_SQL = """
WITH scope AS (
    SELECT id, created_at, resolved_at, resolved_by_id, source, severity FROM escalations_incident
    WHERE created_at >= %(since)s AND created_at < %(until)s
      AND (%(all_teams)s OR team_id = ANY(%(team_ids)s::bigint[]))
)
"""

_COUNTS_SQL = (
    _SCOPE_SQL
    + """
SELECT GROUPING(source), GROUPING(severity), source, severity, day, count(*)
FROM (SELECT source, severity, (created_at AT TIME ZONE 'UTC')::date - %(since_day)s AS day FROM scope) x
GROUP BY GROUPING SETS ((source), (severity), (day))
"""
)

# One pass over the scope's timeline: per incident the first acknowledgement, the highest policy
# step reached (manual reassign pages left out), who the first step paged and whether it was
# reassigned; then the percentiles and the step facts over every incident in scope.
_EV_CTE = """ev AS (
    SELECT t.incident_id,
           min(t.at) FILTER (WHERE t.kind = 'acknowledged') AS first_ack,
           max(t.step) FILTER (WHERE t.paging) AS max_step,
           (array_agg(t.data -> 'user_ids' ORDER BY t.at, t.id) FILTER (WHERE t.paging))[1] AS first_users,
           bool_or(t.kind = 'reassigned') AS reassigned
    FROM (
        SELECT e.incident_id, e.at, e.id, e.kind, e.data, COALESCE((e.data ->> 'step')::int, 0) AS step,
               e.kind = 'step_reached' AND COALESCE((e.data ->> 'step')::int, 0) <> %(manual_step)s AS paging
        FROM scope s JOIN escalations_timelineevent e ON e.incident_id = s.id
        WHERE e.kind IN ('acknowledged', 'step_reached', 'reassigned')
    ) t
    GROUP BY t.incident_id
)"""

# Per incident (scope s LEFT JOIN ev): resolved with somebody paged first, and resolved by one of them alone.
_FACT_FLAGS = """s.resolved_at IS NOT NULL AND jsonb_typeof(ev.first_users) = 'array'
               AND jsonb_array_length(ev.first_users) > 0 AS resolved_paged,
           ev.max_step = 0 AND NOT ev.reassigned AND ev.first_users @> to_jsonb(s.resolved_by_id) AS alone"""

_FACTS_SQL = (
    _SCOPE_SQL
    + ", "
    + _EV_CTE
    + """, facts AS (
    SELECT s.created_at, s.resolved_at, ev.first_ack, ev.max_step,
           """
    + _FACT_FLAGS
    + """
    FROM scope s LEFT JOIN ev ON ev.incident_id = s.id
)
SELECT count(first_ack),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', first_ack - created_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY date_part('epoch', first_ack - created_at)),
       count(resolved_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', resolved_at - created_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY date_part('epoch', resolved_at - created_at)),
       count(*) FILTER (WHERE max_step >= 0),
       count(*) FILTER (WHERE max_step >= 1),
       count(*) FILTER (WHERE resolved_paged),
       count(*) FILTER (WHERE resolved_paged AND alone)
FROM facts
"""
)

# Pages per person in 15-minute buckets: every zone's offset is a multiple of 15 minutes and the
# hour bands change on whole local hours, so a bucket falls in exactly one band.
_PAGES_SQL = (
    _SCOPE_SQL
    + """
SELECT p.user_id, u.time_zone, floor(date_part('epoch', COALESCE(p.sent_at, p.due_at)) / 900)::bigint, count(*)
FROM scope s JOIN escalations_page p ON p.incident_id = s.id JOIN portal_user u ON u.id = p.user_id
WHERE p.status = ANY(%(counted)s::text[])
GROUP BY 1, 2, 3
"""
)


def _insights_aggregated(*, team_ids: list[int] | None, since: datetime, now: datetime, days: int) -> Insights:
    """PostgreSQL: three aggregate queries, without JIT (in one transaction)."""
    from django.db import connection, transaction

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


def _most_common(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
