"""Selectors: bounded queries whatever the team count; users for a position."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from rotations import selectors
from tests.factories import (
    ExclusionFactory,
    OverrideFactory,
    RotationEraFactory,
    RotationFactory,
    TeamFactory,
    UserFactory,
)
from tests.rotations.conftest import MON

pytestmark = pytest.mark.django_db


def _seed(n_teams):
    teams = []
    for _ in range(n_teams):
        team = TeamFactory()
        people = UserFactory.create_batch(3)
        rotation = RotationFactory(team=team)
        RotationEraFactory(
            rotation=rotation,
            participants=people,
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
            start_date=date(2026, 1, 5),
            handoff_time=time(9),
        )
        RotationEraFactory(rotation=rotation, participants=people[::-1], effective_from=MON + timedelta(days=30))
        ExclusionFactory(user=people[0], start=MON - timedelta(hours=1), end=MON + timedelta(hours=5))
        OverrideFactory(rotation=rotation, user=people[2], start=MON, end=MON + timedelta(hours=2))
        teams.append(team)
    return teams


def test_teams_oncall_get_query_count_bounded(django_assert_max_num_queries):
    teams = _seed(50)
    with django_assert_max_num_queries(5):
        result = selectors.teams_oncall_get(team_ids=[t.pk for t in teams], at=MON + timedelta(hours=1))
    assert len(result) == 50
    for positions in result.values():
        assert set(positions) == {"primary", "secondary"}
        assert positions["primary"][0].reason == "override"
    # The roster's five, then the people, exclusions and overrides the rows name.
    with django_assert_max_num_queries(8):
        rows = selectors.teams_oncall_rows_get(team_ids=[t.pk for t in teams], at=MON + timedelta(hours=1))
        assert all(r.user is not None for team_rows in rows.values() for r in team_rows)
        primary = [r for team_rows in rows.values() for r in team_rows if r.position == "primary"]
        assert primary and all(
            r.reason == "override" and r.note.startswith(("override", "covering for")) for r in primary
        )


def test_rotation_specs_for_teams_query_count(django_assert_max_num_queries):
    teams = _seed(20)
    with django_assert_max_num_queries(5):
        data = selectors.rotation_specs_for_teams(team_ids=[t.pk for t in teams], since=MON, until=MON + timedelta(1))
    roster = data.team(teams[0].pk)
    assert len(roster.specs) == 1 and len(roster.specs[0].eras) == 2
    assert len(roster.exclusions) == 1 and len(roster.overrides) == 1
    assert data.team(-1).specs == ()


def test_team_oncall_users_and_gaps(roster):
    rotation, people = roster
    team = rotation.team
    assert selectors.team_oncall_users(team=team, position="primary", at=MON + timedelta(hours=1)) == [people[0]]
    assert selectors.team_oncall_users(team=team, position="tertiary", at=MON) == []
    assert selectors.team_oncall_users(team=team, position="primary", at=MON - timedelta(days=1)) == []
    # Before the first handoff both positions are uncovered.
    gaps = selectors.team_gaps_get(team=team, since=MON - timedelta(days=1), until=MON + timedelta(days=1))
    assert gaps == [("primary", MON - timedelta(days=1), MON), ("secondary", MON - timedelta(days=1), MON)]


def test_user_shifts_include_overrides_elsewhere(roster):
    rotation, people = roster
    outsider = UserFactory()
    OverrideFactory(rotation=rotation, user=outsider, position="secondary", start=MON, end=MON + timedelta(hours=3))
    shifts = selectors.user_shifts_get(user=outsider, since=MON - timedelta(days=1), until=MON + timedelta(days=1))
    assert [(s.position, s.start, s.end, s.reason) for s in shifts] == [
        ("secondary", MON, MON + timedelta(hours=3), "override")
    ]


def test_override_takers_exclusions_are_loaded_with_their_team(django_assert_max_num_queries):
    """The one loader (also behind handovers, reminders, gaps, fairness) includes the exclusions of
    people who only take an override, so the gap check can warn they are on call while away."""
    team = _seed(1)[0]
    outsider = UserFactory()
    rotation = team.rotations.get()
    OverrideFactory(rotation=rotation, user=outsider, start=MON + timedelta(days=2), end=MON + timedelta(days=3))
    away = ExclusionFactory(user=outsider, start=MON + timedelta(days=2), end=MON + timedelta(days=2, hours=6))
    ExclusionFactory(user=UserFactory(), start=MON, end=MON + timedelta(days=3))  # nobody's business here
    with django_assert_max_num_queries(5):
        data = selectors.rotation_specs_for_teams(team_ids=[team.pk], since=MON, until=MON + timedelta(days=7))
    roster = data.teams[team.pk]
    assert away.pk in {x.id for x in roster.exclusions}
    assert len(roster.exclusions) == 2  # the participant's and the override taker's
    assert roster.spec(rotation.pk).id == rotation.pk


def test_shift_jobs_query_count_does_not_grow_with_teams(django_assert_max_num_queries):
    from rotations.reminders import reminders_run
    from rotations.roster_health import fairness_report

    _seed(30)
    team = _seed(1)[0]
    with django_assert_max_num_queries(7):  # prefs, rotations, the five-query load
        reminders_run(now=MON + timedelta(days=40))
    with django_assert_max_num_queries(6):  # the five-query load, names
        fairness_report(team=team, now=MON)
