"""Insights roll-up (portal.insights.rollup): the same numbers as aggregating the whole period live.

Counts, rates, people and days must be equal; percentiles come from a duration histogram and must
be within metrics.PERCENTILE_ERROR of the exact ones (plus half a second for durations under 1 s).
"""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from config import locks
from escalations.engine import MANUAL_STEP
from escalations.models import Incident, Page, TimelineEvent
from portal.insights import live as insights_live
from portal.insights import load as insights_load
from portal.insights import metrics, rollup
from portal.insights.metrics import Tally
from portal.models import InsightsRollup, JobRun, User
from tests.factories import IncidentFactory, MembershipFactory, TeamFactory, UserFactory

NOW = datetime(2026, 3, 4, 15, 20, 30, tzinfo=UTC)  # a Wednesday afternoon


def _close(rolled: float | None, exact: float | None) -> bool:
    if rolled is None or exact is None:
        return rolled is exact
    return abs(rolled - exact) <= metrics.PERCENTILE_ERROR * abs(exact) + metrics.PERCENTILE_ERROR_SECONDS + 1e-9


# ----------------------------------------------------------------------------- pure: histograms


@given(st.floats(min_value=0, max_value=10**8, allow_nan=False))
def test_a_bucket_stands_for_its_durations_within_the_bound(seconds):
    value = metrics.bucket_value(metrics.duration_bucket(seconds))
    assert _close(value, seconds)


@settings(max_examples=300)
@given(
    st.lists(st.floats(min_value=0, max_value=10**7, allow_nan=False), min_size=1, max_size=60),
    st.sampled_from([0, 5, 50, 90, 95, 100]),
)
def test_histogram_percentiles_are_within_the_bound_of_exact_ones(values, p):
    histogram = Counter(metrics.duration_bucket(v) for v in values)
    assert _close(metrics.histogram_percentile(histogram, p), metrics.percentile(values, p))


def test_histogram_percentile_interpolates_between_ranks_like_percentile():
    # Four values, each alone in its bucket: ranks as in test_percentile_linear_interpolation.
    values = [10.0, 20.0, 30.0, 40.0]
    histogram = Counter(metrics.duration_bucket(v) for v in values)
    rep = [metrics.bucket_value(metrics.duration_bucket(v)) for v in values]
    assert metrics.histogram_percentile(histogram, 50) == pytest.approx((rep[1] + rep[2]) / 2)
    assert metrics.histogram_percentile(histogram, 95) == pytest.approx(rep[2] + 0.85 * (rep[3] - rep[2]))
    assert metrics.histogram_percentile({}, 50) is None
    assert metrics.PERCENTILE_ERROR < 0.005  # what the page promises ("within 0.5 %")


def test_tallies_add_up_and_survive_json():
    a = Tally(incidents=2, by_source=Counter(alert=2), ack=Counter({5: 1}), paged=2, people={7: [1, 0, 2]})
    b = Tally(
        incidents=1,
        by_source=Counter(api=1),
        ack=Counter({5: 2, 9: 1}),
        alone=1,
        per_day=Counter({NOW.date(): 1}),
        people={7: [0, 1, 0], 8: [3, 0, 0]},
    )
    total = Tally.from_json(a.to_json()).add(Tally.from_json(b.to_json()))
    assert total.incidents == 3 and total.by_source == {"alert": 2, "api": 1} and total.ack == {5: 3, 9: 1}
    assert (total.paged, total.alone, total.per_day) == (2, 1, {NOW.date(): 1})
    assert total.people == {7: [1, 1, 2], 8: [3, 0, 0]}


# ------------------------------------------------------------------------------ the dataset


def _history(now: datetime, *, seed: int = 3, teams: int = 3, incidents: int = 160) -> list:
    """Teams with people in several zones and incidents over the last 95 days: acknowledged after
    0.3 s to 2 h, resolved after 2 s to 3 days, some escalated, reassigned or never paged, pages in
    counted and uncounted states; some at the period's edges (its first hour, midnight, today)."""
    rng = random.Random(seed)
    zones = ["UTC", "Asia/Kolkata", "America/New_York", "Europe/Berlin", "Australia/Adelaide"]
    made = []
    for t in range(teams):
        team = TeamFactory()
        people = [MembershipFactory(team=team, user=UserFactory(time_zone=zones[(t + k) % 5])).user for k in range(3)]
        made.append((team, people))
    edges = [now - timedelta(days=d, minutes=m) for d in (7, 30, 90) for m in (-45, -5, 1, 30, 61)]
    edges += [now.replace(hour=0, minute=0, second=0) + timedelta(seconds=s) for s in (-1, 0, 1)]
    edges += [now - timedelta(minutes=3), now - timedelta(days=1, hours=2), now - timedelta(days=95)]
    moments = edges + [now - timedelta(seconds=rng.randint(1, 92 * 86400)) for _ in range(incidents)]
    events, pages = [], []
    for k, created in enumerate(moments):
        team, people = made[k % teams]
        first, second = rng.sample(people, 2)
        ack = created + timedelta(seconds=rng.choice([0.3, 4, 60]) * rng.uniform(1, 120))
        ack = ack if rng.random() < 0.85 else None
        fixed = created + timedelta(seconds=rng.uniform(2, 3 * 86400)) if rng.random() < 0.7 else None
        if fixed and fixed > now:
            fixed = None
        if ack and ack > now:
            ack = None
        incident = IncidentFactory(
            team=team,
            created_at=created,
            source=rng.choice(["alert", "api", "phone", "manual"]),
            severity=rng.choice(["critical", "error", "warning"]),
            status="resolved" if fixed else "triggered",
            resolved_at=fixed,
            resolved_by=rng.choice([first, first, second]) if fixed else None,
        )
        shape = rng.random()
        if shape < 0.9:  # the policy paged someone
            events.append(
                TimelineEvent(
                    incident=incident,
                    kind="step_reached",
                    at=created,
                    message="s",
                    data={"step": 0, "user_ids": [first.pk] if shape < 0.85 else []},
                )
            )
            for rule, status in enumerate(rng.sample(["sent", "delivered", "failed", "canceled", "pending"], 2)):
                pages.append(
                    Page(
                        incident=incident,
                        cycle=0,
                        step=0,
                        loop=0,
                        user=first,
                        rule_index=rule,
                        channel="sms",
                        destination="+15550000000",
                        status=status,
                        due_at=created,
                        sent_at=created + timedelta(seconds=rng.randint(0, 2000)) if rng.random() < 0.8 else None,
                    )
                )
            if rng.random() < 0.2:  # reached the secondary
                at = created + timedelta(minutes=5)
                events.append(
                    TimelineEvent(
                        incident=incident,
                        kind="step_reached",
                        at=at,
                        message="s",
                        data={"step": 1, "user_ids": [second.pk]},
                    )
                )
                pages.append(
                    Page(
                        incident=incident,
                        cycle=0,
                        step=1,
                        loop=0,
                        user=second,
                        rule_index=0,
                        channel="voice",
                        destination="+15550000001",
                        status="answered",
                        due_at=at,
                    )
                )
            if rng.random() < 0.1:
                events.append(
                    TimelineEvent(incident=incident, kind="reassigned", at=created + timedelta(minutes=1), message="r")
                )
                events.append(
                    TimelineEvent(
                        incident=incident,
                        kind="step_reached",
                        at=created + timedelta(minutes=1),
                        message="s",
                        data={"step": MANUAL_STEP, "user_ids": [second.pk]},
                    )
                )
        if ack:
            events.append(TimelineEvent(incident=incident, kind="acknowledged", at=ack, message="a"))
            events.append(
                TimelineEvent(
                    incident=incident,
                    kind="acknowledged",
                    at=ack + timedelta(minutes=9),
                    message="again: only the first counts",
                )
            )
    TimelineEvent.objects.bulk_create(events)
    Page.objects.bulk_create(pages)
    return made


def _exact(team_ids, now, days) -> metrics.Insights:
    return insights_live._insights_aggregated(team_ids=team_ids, since=now - timedelta(days=days), now=now, days=days)


def _assert_same(rolled: metrics.Insights, exact: metrics.Insights) -> None:
    assert rolled.approximate and not exact.approximate
    assert rolled.incidents == exact.incidents
    assert rolled.by_source == exact.by_source and rolled.by_severity == exact.by_severity
    assert rolled.per_day == exact.per_day
    assert rolled.secondary_rate == pytest.approx(exact.secondary_rate)
    assert rolled.first_responder_share == pytest.approx(exact.first_responder_share)
    assert rolled.pages_per_person == exact.pages_per_person and rolled.pages_by_band == exact.pages_by_band
    for mine, theirs in ((rolled.mtta, exact.mtta), (rolled.mttr, exact.mttr)):
        assert mine.count == theirs.count
        assert _close(mine.p50, theirs.p50), (mine, theirs)
        assert _close(mine.p95, theirs.p95), (mine, theirs)


def _rolled(team_ids, now, days) -> metrics.Insights:
    insights = insights_load.insights_load(team_ids=team_ids, now=now, days=days, with_oncall=False)
    assert insights.approximate, "the roll-up was not used"
    return insights


# ------------------------------------------------------------------------- roll-up == direct


@pytest.mark.django_db
def test_rolled_up_insights_equal_the_direct_aggregation():
    made = _history(NOW)
    run = rollup.insights_rollup_refresh(now=NOW)
    assert run.as_of == [NOW.date()] and run.created == 3 * (len(made) + 1) and not run.skipped
    team_ids = [team.pk for team, _ in made]
    for days in rollup.PERIODS:
        for scope in (None, team_ids[:1], team_ids[1:], []):
            _assert_same(_rolled(scope, NOW, days), _exact(scope, NOW, days))
    # The dataset is not trivial: all three kinds of rate have both outcomes.
    exact = _exact(None, NOW, 90)
    assert exact.incidents > 100 and 0 < exact.secondary_rate < 1 and 0 < exact.first_responder_share < 1
    assert any(bands["sleep"] for bands in exact.pages_by_band.values())


@pytest.mark.django_db
def test_the_page_reads_its_rows_and_aggregates_only_the_rest():
    made = _history(NOW, incidents=60)
    rollup.insights_rollup_refresh(now=NOW)
    midnight = NOW.replace(hour=0, minute=0, second=0)
    assert set(InsightsRollup.objects.values_list("covers_until", flat=True)) == {midnight}
    # The first day's hours are kept apart, so a page adds only those after its period's start.
    row = InsightsRollup.objects.get(as_of=NOW.date(), days=7, team=None)
    assert (
        sum(part["incidents"] for part in row.hours.values())
        == Incident.objects.filter(created_at__date=(NOW - timedelta(days=7)).date()).count()
    )
    for scope in (None, [made[0][0].pk]):
        with CaptureQueriesContext(connection) as ctx:
            _rolled(scope, NOW, 90)
        # The scope's rows, then the live part: incidents and their pages (people's zones joined in).
        assert len(ctx.captured_queries) == 3


@pytest.mark.django_db
def test_a_second_run_writes_nothing_and_a_change_shows_after_the_next_run():
    made = _history(NOW, incidents=80)
    first = rollup.insights_rollup_refresh(now=NOW)
    again = rollup.insights_rollup_refresh(now=NOW + timedelta(minutes=5))
    assert (again.created, again.updated, again.deleted, again.unchanged) == (0, 0, 0, first.created)
    team_ids = [made[0][0].pk]
    old = IncidentFactory(team=made[0][0], created_at=NOW - timedelta(days=3), resolved_at=None)
    TimelineEvent.objects.create(
        incident=old, kind="acknowledged", at=NOW - timedelta(days=3) + timedelta(hours=5), message="late"
    )
    # An incident opened before today is counted as the last run saw it (the page says so) ...
    assert _rolled(team_ids, NOW, 7).incidents == _exact(team_ids, NOW, 7).incidents - 1
    # ... today's are live ...
    IncidentFactory(team=made[0][0], created_at=NOW - timedelta(minutes=1))
    assert _rolled(team_ids, NOW, 7).incidents == _exact(team_ids, NOW, 7).incidents - 1
    # ... and the next run catches up, rewriting only the rows that changed (the team's and every team's).
    run = rollup.insights_rollup_refresh(now=NOW + timedelta(minutes=10))
    assert (run.created, run.updated) == (0, 6)  # 7, 30 and 90 days, for the team and for every team
    for days in rollup.PERIODS:
        _assert_same(_rolled(team_ids, NOW, days), _exact(team_ids, NOW, days))
        _assert_same(_rolled(None, NOW, days), _exact(None, NOW, days))


@pytest.mark.django_db
def test_tomorrows_rows_are_ready_at_midnight():
    made = _history(NOW, incidents=80)
    evening = NOW.replace(hour=23, minute=30)
    run = rollup.insights_rollup_refresh(now=evening)
    tomorrow = NOW.date() + timedelta(days=1)
    assert run.as_of == [NOW.date(), tomorrow]
    assert InsightsRollup.objects.get(as_of=tomorrow, days=7, team=None).covers_until == evening - rollup.SETTLE
    # Opened after that run, before midnight and after it: live on tomorrow's page, no run needed.
    IncidentFactory(team=made[1][0], created_at=evening + timedelta(minutes=20))
    IncidentFactory(team=made[1][0], created_at=evening + timedelta(minutes=35))
    after_midnight = evening + timedelta(minutes=40)
    for days in rollup.PERIODS:
        for scope in (None, [made[1][0].pk]):
            _assert_same(_rolled(scope, after_midnight, days), _exact(scope, after_midnight, days))
    # The next day's first run drops the rows of days gone by.
    rollup.insights_rollup_refresh(now=after_midnight + timedelta(minutes=5))
    assert set(InsightsRollup.objects.values_list("as_of", flat=True)) == {tomorrow}


@pytest.mark.django_db
def test_without_rows_for_today_the_page_aggregates_the_period_live():
    made = _history(NOW, incidents=30)
    scope = [made[0][0].pk]
    assert not insights_load.insights_load(team_ids=scope, now=NOW, days=30, with_oncall=False).approximate
    rollup.insights_rollup_refresh(now=NOW - timedelta(days=1))  # yesterday's rows only
    data = insights_load.insights_load(team_ids=scope, now=NOW, days=30, with_oncall=False)
    assert not data.approximate and data.incidents == _exact(scope, NOW, 30).incidents
    rollup.insights_rollup_refresh(now=NOW)
    assert insights_load.insights_load(team_ids=scope, now=NOW, days=14, with_oncall=False).approximate is False


@pytest.mark.django_db
def test_one_run_at_a_time():
    _history(NOW, incidents=10)
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [locks.INSIGHTS_ROLLUP])
        assert rollup.insights_rollup_refresh(now=NOW).skipped
        # Released here: closing the connection would leave it to the server's backend exit, a moment later.
        other.execute("SELECT pg_advisory_unlock(%s)", [locks.INSIGHTS_ROLLUP])
    assert not InsightsRollup.objects.exists()
    assert not rollup.insights_rollup_refresh(now=NOW).skipped


@pytest.mark.django_db
def test_the_task_refreshes_and_records_its_run():
    from portal.tasks import insights_rollup

    # Mid-afternoon: in the last hour of a UTC day the run also prepares tomorrow's rows, whose live
    # part moves with the clock, so "nothing changed" is asserted away from that hour.
    with time_machine.travel(NOW, tick=True):
        _history(NOW, incidents=10)
        assert insights_rollup() > 0
        assert JobRun.objects.get(name="insights-rollup").runs == 1
        assert insights_rollup() == 0  # nothing changed


# ------------------------------------------------------------------------------- the page


def _page_queries(client, url) -> tuple[int, str]:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


@pytest.mark.django_db
def test_all_teams_page_from_the_roll_up_has_a_fixed_number_of_queries(login, staff):
    client = login(staff)
    _history(datetime.now(UTC), teams=2, incidents=20)
    rollup.insights_rollup_refresh(now=datetime.now(UTC))
    few, body = _page_queries(client, "/insights/?team=all&days=90")
    assert "within 0.5 % of the exact value" in body
    _history(datetime.now(UTC), seed=4, teams=6, incidents=200)
    rollup.insights_rollup_refresh(now=datetime.now(UTC))
    many, body = _page_queries(client, "/insights/?team=all&days=90")
    assert many == few <= 12, (few, many)
    csv_queries, text = _page_queries(client, reverse("portal:insights_csv") + "?team=all&days=90")
    assert csv_queries <= 12
    # Everyone paged, by e-mail, with the same counts as aggregating the period live.
    exact = _exact(None, datetime.now(UTC), 90)
    emails = dict(User.objects.values_list("pk", "email"))
    assert len(exact.pages_per_person) > 20
    for uid, n in exact.pages_per_person.items():
        assert f"pages,{emails[uid]},{n}\r\n" in text


@pytest.mark.django_db
def test_the_page_says_nothing_about_a_histogram_when_it_is_exact(login, staff):
    client = login(staff)
    _history(datetime.now(UTC), teams=1, incidents=5)
    _, body = _page_queries(client, "/insights/?team=all&days=7")
    assert "Time to acknowledge" in body and "insights-rollup-note" not in body
