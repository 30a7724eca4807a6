"""Insights for a scope: the roll-up for closed days where it exists, the live rows for the rest."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection

from portal.insights import rollup
from portal.insights.live import _insights_aggregated, insights_from_rows
from portal.insights.metrics import Insights, oncall_hours
from rotations.selectors import teams_shifts_get

ONCALL_TEAMS_MAX = 25  # on-call hours resolve every shift of every team in scope: only for a few teams


def insights_load(*, team_ids: Iterable[int] | None, now: datetime, days: int, with_oncall: bool = True) -> Insights:
    """Everything the Insights page shows, for the teams given (None: every team).

    On PostgreSQL the closed days come from the roll-up when it has been made for today (portal.insights.rollup:
    a few rows, whatever the number of incidents) and the rest is aggregated live; without a roll-up
    the database aggregates the whole period (counts, exact percentiles, step facts, 15-minute page
    buckets) in a fixed number of queries. Elsewhere (the SQLite demo) the rows are loaded and folded
    in Python. All three give the same numbers, the roll-up's percentiles within PERCENTILE_ERROR.
    """
    team_ids = None if team_ids is None else sorted(set(team_ids))
    since = now - timedelta(days=days)
    if connection.vendor == "postgresql":
        insights = rollup.insights_rolled_load(team_ids=team_ids, now=now, days=days)
        if insights is None:
            insights = _insights_aggregated(team_ids=team_ids, since=since, now=now, days=days)
    else:
        insights = insights_from_rows(team_ids=team_ids, since=since, now=now, days=days)
    if with_oncall:
        shifts = teams_shifts_get(team_ids=team_ids, since=since, until=now)[1]  # one load for every team
        insights.oncall_hours = oncall_hours(shifts, since, now)
    return insights
