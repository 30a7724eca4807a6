"""Metrics over hand-built rows; every expected number is worked out in the comment beside it."""

from datetime import UTC, datetime, timedelta

import pytest

from escalations.engine import MANUAL_STEP
from portal.insights import load as insights_load
from portal.insights import metrics
from portal.insights.metrics import IncidentFacts, PageFacts

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # Monday 12:00 UTC


def facts(i, *, ack=None, res=None, by=None, step=0, first=(1,), reassigned=False, source="alert", sev="error"):
    return IncidentFacts(
        id=i,
        team_id=1,
        created_at=T,
        source=source,
        severity=sev,
        first_ack_at=T + timedelta(seconds=ack) if ack is not None else None,
        resolved_at=T + timedelta(seconds=res) if res is not None else None,
        resolved_by_id=by,
        max_step=step,
        first_paged_user_ids=frozenset(first),
        reassigned=reassigned,
    )


def test_percentile_linear_interpolation():
    assert metrics.percentile([], 50) is None
    assert metrics.percentile([10], 95) == 10
    # ranks 0..3 over [10, 20, 30, 40]: p50 -> rank 1.5 -> 25; p95 -> rank 2.85 -> 30 + 0.85*10 = 38.5
    assert metrics.percentile([40, 10, 30, 20], 50) == 25
    assert metrics.percentile([40, 10, 30, 20], 95) == pytest.approx(38.5)


def test_mtta_and_mttr_skip_missing_values():
    rows = [facts(1, ack=60, res=600), facts(2, ack=180, res=1200), facts(3, ack=None, res=300), facts(4)]
    tta = metrics.time_to_acknowledge(rows)
    assert (tta.count, tta.p50) == (2, 120)  # 60 and 180
    assert tta.p95 == pytest.approx(174)  # 60 + 0.95 * 120
    ttr = metrics.time_to_resolve(rows)
    assert (ttr.count, ttr.p50) == (3, 600)  # 300, 600, 1200


def test_secondary_rate_counts_only_paged_incidents():
    rows = [facts(1, step=0), facts(2, step=1), facts(3, step=0), facts(4, step=0), facts(5, step=-1)]
    assert metrics.secondary_page_rate(rows) == 0.25  # 1 of the 4 paged reached step index 1
    assert metrics.secondary_page_rate([facts(9, step=-1)]) is None
    assert metrics.in_band(0.25, metrics.SECONDARY_BAND) is False
    assert metrics.in_band(0.15, metrics.SECONDARY_BAND) is True


def test_first_responder_share():
    rows = [
        facts(1, res=10, by=1, step=0),  # alone: counts
        facts(2, res=10, by=2, step=0),  # resolved by someone not paged first
        facts(3, res=10, by=1, step=1),  # escalated
        facts(4, res=10, by=1, step=0, reassigned=True),  # handed over
        facts(5, res=None, step=0),  # not resolved: not in the denominator
    ]
    assert metrics.first_responder_share(rows) == 0.25


def test_hour_bands_use_each_persons_zone():
    # Monday 12:00 UTC = 13:00 Berlin (business), 21:00 Tokyo (evening), 07:00 New York (sleep)
    assert metrics.hour_band(T, "Europe/Berlin") == "business"
    assert metrics.hour_band(T, "Asia/Tokyo") == "evening"
    assert metrics.hour_band(T, "America/New_York") == "sleep"
    # Saturday 14:00 UTC in UTC: weekend daytime is evening, not business
    assert metrics.hour_band(datetime(2026, 3, 7, 14, tzinfo=UTC), "UTC") == "evening"
    assert metrics.hour_band(datetime(2026, 3, 2, 22, tzinfo=UTC), "UTC") == "sleep"
    assert metrics.hour_band(datetime(2026, 3, 2, 18, tzinfo=UTC), "UTC") == "evening"
    assert metrics.hour_band(datetime(2026, 3, 2, 8, tzinfo=UTC), "UTC") == "business"


def test_pages_per_person_and_bands_ignore_canceled():
    pages = [
        PageFacts(1, T, "delivered"),
        PageFacts(1, T + timedelta(hours=11), "sent"),  # 23:00 UTC: sleep
        PageFacts(2, T, "failed"),
        PageFacts(2, T, "canceled"),
        PageFacts(3, T, "pending"),
    ]
    assert metrics.pages_per_person(pages) == {1: 2, 2: 1}
    bands = metrics.pages_by_band(pages, {1: "UTC", 2: "UTC"})
    assert bands == {1: {"business": 1, "evening": 0, "sleep": 1}, 2: {"business": 1, "evening": 0, "sleep": 0}}


def test_oncall_hours_clip_to_window_and_skip_gaps():
    class Sh:
        def __init__(self, user_id, start_h, end_h):
            self.user_id, self.start, self.end = user_id, T + timedelta(hours=start_h), T + timedelta(hours=end_h)

    shifts = [Sh(1, -5, 10), Sh(2, 10, 30), Sh(None, 0, 24), Sh(1, 30, 40)]
    # window [T, T+24h): user 1 -> 10 h (clipped from -5), user 2 -> 14 h (clipped at 24), gap skipped
    assert metrics.oncall_hours(shifts, T, T + timedelta(hours=24)) == {2: 14.0, 1: 10.0}


def test_facts_build_from_timeline_rows():
    incidents = [
        {
            "id": 7,
            "team_id": 1,
            "created_at": T,
            "source": "alert",
            "severity": "critical",
            "resolved_at": T + timedelta(minutes=30),
            "resolved_by_id": 5,
        }
    ]
    events = [
        {"id": 1, "incident_id": 7, "kind": "step_reached", "at": T, "data": {"step": 0, "user_ids": [5]}},
        {"id": 2, "incident_id": 7, "kind": "acknowledged", "at": T + timedelta(minutes=3), "data": {}},
        {
            "id": 3,
            "incident_id": 7,
            "kind": "step_reached",
            "at": T + timedelta(minutes=40),
            "data": {"step": MANUAL_STEP, "user_ids": [9]},
        },  # a reassign page is not a policy step
        {"id": 4, "incident_id": 7, "kind": "acknowledged", "at": T + timedelta(minutes=9), "data": {}},
    ]
    (f,) = metrics.facts_build(incidents, events)
    assert f.first_ack_at == T + timedelta(minutes=3)
    assert f.max_step == 0 and f.first_paged_user_ids == {5}
    assert metrics.first_responder_share([f]) == 1.0


def test_incidents_per_day_are_utc_calendar_days():
    rows = [facts(1), facts(2), facts(3), facts(4)]
    rows[1].created_at = T + timedelta(days=2, hours=1)  # Wednesday 13:00
    rows[2].created_at = T + timedelta(hours=11, minutes=59)  # Monday 23:59: still the first day
    rows[3].created_at = T - timedelta(days=1)  # the day before: no bar
    # A window from Monday 12:00 over 4 days touches 5 calendar days, the first and the last partly.
    assert metrics.incidents_per_day(rows, T, 4) == [2, 0, 1, 0, 0]


@pytest.mark.django_db
def test_insights_load_end_to_end(team, role_users, policy):
    from escalations.incidents.advance import incident_advance
    from escalations.incidents.services import incident_acknowledge, incident_resolve, incident_trigger

    now = T + timedelta(hours=2)
    inc = incident_trigger(team=team, title="a", now=T).incident
    incident_advance(incident_id=inc.pk, now=T)
    incident_acknowledge(incident=inc, by=role_users["engineer"], via="web", now=T + timedelta(minutes=4))
    incident_resolve(incident=inc, by=role_users["engineer"], via="web", now=T + timedelta(minutes=20))
    data = insights_load.insights_load(team_ids=[team.pk], now=now, days=7, with_oncall=False)
    assert data.incidents == 1
    assert data.mtta.p50 == 240 and data.mttr.p50 == 1200
    assert data.secondary_rate == 0.0 and data.first_responder_share == 1.0
