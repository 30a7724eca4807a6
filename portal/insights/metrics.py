"""Insights: plain functions over incident, timeline and page rows (no ORM inside the maths).

`insights_load` fetches the rows (a fixed number of queries); everything else is pure and takes
`now` or explicit windows, so it is tested with hand-computed fixtures. On PostgreSQL the closed days
of a period come from a roll-up (portal.insights.rollup) as a `Tally`: counts and duration histograms that add
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


def _most_common(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
