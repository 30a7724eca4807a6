"""Insights roll-up: each period's past days pre-aggregated per team and for every team.

Aggregating a period live costs PostgreSQL about a second for 100,000 incidents (the timeline join
and two percentile sorts), and every staff visit to "all teams" would pay it. So a beat task
(`insights_rollup_refresh`, every few minutes) stores, for today's pages and each period of 7, 30
and 90 days, one `InsightsRollup` row per team and one for every team: a `metrics.Tally` of the
incidents opened from the period's second day up to `covers_until` (today's midnight), plus the
period's first day hour by hour. A page reads its rows (the every-team one, or one per team in
scope) and aggregates the rest live the same way: the incidents opened since `covers_until` (today)
and those of the minutes between the period's start and its first whole hour. Tallies keep
durations as histograms, so percentiles are within `metrics.PERCENTILE_ERROR` of the exact ones.

Each run recomputes every period from the incidents, timeline and pages, so a change to an incident
opened before today shows after the next run, and writes only the rows that changed. In the last
hour of a UTC day it also prepares the next day's rows (covering up to the run), so pages never
wait for a run after midnight. Without rows for today (no beat yet, or the demo on SQLite) the page
aggregates the whole period live, exactly.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction

from config import locks
from escalations.engine import MANUAL_STEP
from portal.insights import metrics
from portal.insights import sql as insights_sql
from portal.insights.metrics import BAND_INDEX, COUNTED_PAGE_STATUSES, Insights, Tally
from portal.models import InsightsRollup

log = logging.getLogger(__name__)

PERIODS = (7, 30, 90)
PREPARE_AHEAD = timedelta(hours=1)  # from 23:00 UTC, runs also make tomorrow's rows
# Rows cover incidents opened up to this long before the run started: an incident is inserted in
# a short transaction right after its created_at, so older ones have all been committed.
SETTLE = timedelta(minutes=2)

# Incidents opened in two ranges (the second may be empty), with their UTC day and hour.
_SCOPE_CTE = """
WITH scope AS (
    SELECT id, team_id, created_at, resolved_at, resolved_by_id, source, severity,
           (created_at AT TIME ZONE 'UTC')::date AS day,
           extract(hour FROM created_at AT TIME ZONE 'UTC')::int AS hour
    FROM escalations_incident
    WHERE ((created_at >= %(from1)s AND created_at < %(until1)s)
           OR (created_at >= %(from2)s AND created_at < %(until2)s))
      AND (%(all_teams)s OR team_id = ANY(%(team_ids)s::bigint[]))
)"""

_BUCKET = "CASE WHEN {x} < 1 THEN 0 ELSE 1 + floor(ln({x}) / ln(%(ratio)s::float8))::int END"
_EPOCH = date(2000, 1, 1)  # days travel as small integers

# Per (window, team) and per window for every team in scope: the counts, and the sources,
# severities, days and duration buckets as arrays (Counter counts them in C; building the maps in
# SQL sorts a row per incident, window and key, several times slower). A window is a range of days,
# or one hour of one day; an incident counts in every window that holds it.
_TALLY_SQL = (
    _SCOPE_CTE
    + ", "
    + insights_sql._EV_CTE
    + """, facts AS (
    SELECT s.team_id, s.day, s.hour, s.source, s.severity, ev.max_step,
           """
    + _BUCKET.format(x="date_part('epoch', ev.first_ack - s.created_at)")
    + """ AS ack_b,
           """
    + _BUCKET.format(x="date_part('epoch', s.resolved_at - s.created_at)")
    + """ AS fix_b,
           """
    + insights_sql._FACT_FLAGS
    + """
    FROM scope s LEFT JOIN ev ON ev.incident_id = s.id
), windowed AS (
    SELECT w.wkey, f.* FROM facts f
    JOIN unnest(%(d_keys)s::int[], %(d_first)s::date[], %(d_last)s::date[]) AS w(wkey, first_day, last_day)
      ON f.day BETWEEN w.first_day AND w.last_day
    UNION ALL
    SELECT w.wkey, f.* FROM facts f
    JOIN unnest(%(h_keys)s::int[], %(h_day)s::date[], %(h_hour)s::int[]) AS w(wkey, day, hour)
      ON f.day = w.day AND f.hour = w.hour
)
SELECT wkey, {team}, count(*), array_agg(source), array_agg(severity), array_agg(day - %(epoch)s),
       array_agg(ack_b) FILTER (WHERE ack_b IS NOT NULL), array_agg(fix_b) FILTER (WHERE fix_b IS NOT NULL),
       count(*) FILTER (WHERE max_step >= 0), count(*) FILTER (WHERE max_step >= 1),
       count(*) FILTER (WHERE resolved_paged), count(*) FILTER (WHERE resolved_paged AND alone)
FROM windowed
GROUP BY {sets}
"""
)
_PER_TEAM = ("team_id", "GROUPING SETS ((wkey, team_id), (wkey))")
_ALL = ("NULL::bigint", "wkey")

# Counted pages per team, day, hour, person (with their zone) and 15-minute bucket (as metrics._PAGES_SQL).
_PEOPLE_SQL = (
    _SCOPE_CTE
    + """
SELECT s.team_id, s.day, s.hour, p.user_id, u.time_zone,
       floor(date_part('epoch', COALESCE(p.sent_at, p.due_at)) / 900)::bigint, count(*)
FROM scope s JOIN escalations_page p ON p.incident_id = s.id JOIN portal_user u ON u.id = p.user_id
WHERE p.status = ANY(%(counted)s::text[])
GROUP BY 1, 2, 3, 4, 5, 6
"""
)


@dataclass(frozen=True)
class Window:
    """UTC days first..last (both included), or with `hour` only that hour of day `first`."""

    key: int
    first: date
    last: date
    hour: int | None = None


ALL_TIME = (date(1, 1, 1), date(9999, 12, 31))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _tally_from_row(row: tuple) -> Tally:
    n, sources, severities, days, acks, fixes, paged, secondary, resolved_paged, alone = row
    return Tally(
        incidents=n,
        by_source=Counter(sources),
        by_severity=Counter(severities),
        per_day=Counter({_EPOCH + timedelta(days=d): k for d, k in Counter(days).items()}),
        ack=Counter(acks or ()),
        fix=Counter(fixes or ()),
        paged=paged,
        secondary=secondary,
        resolved_paged=resolved_paged,
        alone=alone,
    )


def tallies_compute(
    *,
    team_ids: Sequence[int] | None,
    ranges: Sequence[tuple[datetime, datetime]],
    windows: Sequence[Window],
    per_team: bool,
) -> dict[tuple[int, int | None], Tally]:
    """Tallies of the incidents opened in `ranges` (one or two [from, until)) by window and, if
    `per_team`, by team as well: {(window key, team id, or None for every team in scope): Tally}.
    Every window has an every-team entry, empty if nothing happened. Two queries."""
    (from1, until1), (from2, until2) = (list(ranges) + [(ranges[0][1], ranges[0][1])])[:2]
    days = [w for w in windows if w.hour is None]
    hours = [w for w in windows if w.hour is not None]
    params = {
        "from1": from1,
        "until1": until1,
        "from2": from2,
        "until2": until2,
        "all_teams": team_ids is None,
        "team_ids": list(team_ids or []),
        "manual_step": MANUAL_STEP,
        "ratio": metrics.HISTOGRAM_RATIO,
        "counted": sorted(COUNTED_PAGE_STATUSES),
        "d_keys": [w.key for w in days],
        "d_first": [w.first for w in days],
        "d_last": [w.last for w in days],
        "h_keys": [w.key for w in hours],
        "h_day": [w.first for w in hours],
        "h_hour": [w.hour for w in hours],
        "epoch": _EPOCH,
    }
    out: dict[tuple[int, int | None], Tally] = {(w.key, None): Tally() for w in windows}
    team, sets = _PER_TEAM if per_team else _ALL
    with connection.cursor() as cursor:
        cursor.execute(_TALLY_SQL.replace("{team}", team).replace("{sets}", sets), params)
        for wkey, team_id, *counts in cursor.fetchall():
            out[(wkey, team_id)] = _tally_from_row(counts)
        cursor.execute(_PEOPLE_SQL, params)
        buckets = cursor.fetchall()
    # Each (team, day, hour, person, zone, quarter) row lands in the windows holding that day or hour.
    keys_of: dict[tuple[date, int], list[int]] = {}
    band_of: dict[tuple[str, int], int] = {}
    for team_id, day, hour, uid, zone, quarter, n in buckets:
        band = band_of.get((zone, quarter))
        if band is None:
            band = band_of[(zone, quarter)] = BAND_INDEX[
                metrics.hour_band(datetime.fromtimestamp(quarter * 900, UTC), zone)
            ]
        keys = keys_of.get((day, hour))
        if keys is None:
            keys = keys_of[(day, hour)] = [
                w.key for w in windows if w.first <= day <= w.last and w.hour in (None, hour)
            ]
        for key in keys:
            targets = [out[(key, None)]]
            if per_team:
                tally = out.get((key, team_id))
                if tally is None:
                    tally = out[(key, team_id)] = Tally()
                targets.append(tally)
            for tally in targets:
                bands = tally.people.get(uid)
                if bands is None:
                    bands = tally.people[uid] = [0, 0, 0]
                bands[band] += n
    return out


# ------------------------------------------------------------------------------ the read side


_ROWS_SQL = """
SELECT team_id, covers_until,
       CASE WHEN team_id IS NULL AND NOT %(all_teams)s THEN NULL ELSE tally END,
       CASE WHEN team_id IS NULL AND NOT %(all_teams)s THEN NULL ELSE hours END
FROM portal_insightsrollup
WHERE as_of = %(as_of)s AND days = %(days)s AND (team_id IS NULL OR team_id = ANY(%(team_ids)s::bigint[]))
"""


def insights_rolled_load(*, team_ids: list[int] | None, now: datetime, days: int) -> Insights | None:
    """Insights from today's rows plus what they leave out, aggregated live (four queries); None if
    the period has no rows for today."""
    if days not in PERIODS:
        return None
    since = now - timedelta(days=days)
    with connection.cursor() as cursor:
        cursor.execute(
            _ROWS_SQL,
            {
                "as_of": now.astimezone(UTC).date(),
                "days": days,
                "all_teams": team_ids is None,
                "team_ids": team_ids or [],
            },
        )
        rows = cursor.fetchall()
    covers_until = next((until for team_id, until, _, _ in rows if team_id is None), None)
    if covers_until is None:
        return None
    # The first day's hours that lie wholly in the period come from the rows, the minutes before them live.
    first_hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if first_hour < since:
        first_hour += timedelta(hours=1)
    day0 = since.astimezone(UTC).date()
    parts = []
    for team_id, _until, data, hours in rows:
        if data is None or (team_id is None) != (team_ids is None):
            continue
        parts.append(Tally.from_json(json.loads(data)))
        for hour, part in json.loads(hours).items():
            if _midnight(day0) + timedelta(hours=int(hour)) >= first_hour:
                parts.append(Tally.from_json(part))
    live = tallies_compute(
        team_ids=team_ids,
        ranges=[(since, first_hour), (max(covers_until, first_hour), now)],
        windows=[Window(0, *ALL_TIME)],
        per_team=False,
    )
    parts.append(live[(0, None)])
    tally = parts[0]  # the largest (every team's, or a team's) is added to, not copied
    for part in parts[1:]:
        tally.add(part)
    return metrics.insights_from_tally(tally, since=since, now=now, days=days)


# ----------------------------------------------------------------------------- the write side


@dataclass
class RollupRun:
    as_of: list[date]
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: bool = False  # another run held the lock


def insights_rollup_refresh(*, now: datetime) -> RollupRun:
    """Recompute the rows for today's pages (and tomorrow's in the last hour of the day) and drop
    older ones; idempotent, one run at a time. PostgreSQL only (elsewhere a no-op)."""
    today = now.astimezone(UTC).date()
    as_ofs = [today]
    if now + PREPARE_AHEAD >= _midnight(today + timedelta(days=1)):
        as_ofs.append(today + timedelta(days=1))
    run = RollupRun(as_of=as_ofs)
    if connection.vendor != "postgresql":
        return run
    windows: list[Window] = []
    meaning: dict[int, tuple[date, int, int | None]] = {}  # window key -> (as_of, days, hour of the first day)
    until = {as_of: min(_midnight(as_of), now - SETTLE) for as_of in as_ofs}
    for as_of in as_ofs:
        for days in PERIODS:
            day0 = as_of - timedelta(days=days)
            meaning[len(windows)] = (as_of, days, None)
            windows.append(Window(len(windows), day0 + timedelta(days=1), as_of - timedelta(days=1)))
            for hour in range(24):
                meaning[len(windows)] = (as_of, days, hour)
                windows.append(Window(len(windows), day0, day0, hour))
    start = _midnight(min(w.first for w in windows))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [locks.INSIGHTS_ROLLUP])
            if not cursor.fetchone()[0]:
                run.skipped = True
                return run
            cursor.execute("SET LOCAL jit = off")  # compiling these plans costs more than it saves
        tallies = tallies_compute(team_ids=None, ranges=[(start, max(until.values()))], windows=windows, per_team=True)
        fresh: dict[tuple[date, int, int | None], dict] = {}
        for (key, team_id), tally in tallies.items():
            as_of, days, hour = meaning[key]
            row = fresh.setdefault((as_of, days, team_id), {"tally": Tally().to_json(), "hours": {}})
            if hour is None:
                row["tally"] = tally.to_json()
            elif tally.incidents or tally.people:
                row["hours"][str(hour)] = tally.to_json()
        _rows_write(fresh, until=until, now=now, run=run)
        run.deleted += InsightsRollup.objects.filter(as_of__lt=today).delete()[0]
    log.info(
        "insights roll-up for %s: %d created, %d updated, %d deleted, %d unchanged",
        ", ".join(map(str, as_ofs)),
        run.created,
        run.updated,
        run.deleted,
        run.unchanged,
    )
    return run


def _rows_write(
    fresh: dict[tuple[date, int, int | None], dict], *, until: dict[date, datetime], now: datetime, run: RollupRun
) -> None:
    """Write only what changed: from one run to the next, most teams' rows stay the same."""
    stale, changed = [], []
    for row in InsightsRollup.objects.filter(as_of__in=list(until)).defer("computed_at"):
        new = fresh.pop((row.as_of, row.days, row.team_id), None)
        if new is None:
            stale.append(row.pk)
        elif (new["tally"], new["hours"], until[row.as_of]) != (row.tally, row.hours, row.covers_until):
            row.tally, row.hours, row.covers_until, row.computed_at = (
                new["tally"],
                new["hours"],
                until[row.as_of],
                now,
            )
            changed.append(row)
        else:
            run.unchanged += 1
    InsightsRollup.objects.bulk_update(changed, ["tally", "hours", "covers_until", "computed_at"], batch_size=500)
    InsightsRollup.objects.bulk_create(
        [
            InsightsRollup(
                as_of=as_of,
                days=days,
                team_id=team_id,
                tally=new["tally"],
                hours=new["hours"],
                covers_until=until[as_of],
                computed_at=now,
            )
            for (as_of, days, team_id), new in fresh.items()
        ],
        batch_size=500,
    )
    if stale:
        run.deleted += InsightsRollup.objects.filter(pk__in=stale).delete()[0]
    run.created, run.updated = len(fresh), len(changed)
