"""A definition change continues the participant cycle: service, API, stored offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.utils import timezone

from rotations import selectors
from rotations.models import RotationEra
from rotations.services import rotations as services_rotations
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

MON = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin


@pytest.fixture
def five(team):
    """A, B, C, D and a newcomer E, all engineers of `team`."""
    return [
        MembershipFactory(team=team, user=UserFactory(full_name=f"Person {c}"), role="engineer").user for c in "ABCDE"
    ]


def _weekly(team, people, staff, positions=("primary",)):
    return services_rotations.rotation_create(
        team=team,
        name="Weekly",
        time_zone="Europe/Berlin",
        positions=list(positions),
        start_date=date(2026, 3, 2),
        handoff_time=time(9, 0),
        shift_unit="weeks",
        shift_length=1,
        participants=people,
        actor=staff,
    )


def _sequence(team, since, until, position="primary"):
    # Handoffs are 09:00 Berlin: 08:00 UTC in winter, 07:00 in summer; stop short of the next one.
    until -= timedelta(hours=2)
    return [s.user_id for s in selectors.team_shifts_get(team=team, since=since, until=until) if s.position == position]


def _handoff(team, since, n):
    """Start of the n-th shift (0-based) from `since`: the DST change moves handoffs in UTC."""
    shifts = [s for s in selectors.team_shifts_get(team=team, since=since, until=since + timedelta(weeks=n + 2))]
    return sorted({s.start for s in shifts})[n]


def test_adding_a_fifth_person_at_a_handoff_gives_nobody_two_weeks(team, five, staff):
    a, b, c, d, e = (p.pk for p in five)
    rotation = _weekly(team, five[:4], staff)
    change = _handoff(team, MON, 5)  # A served week 5, B is next
    services_rotations.rotation_definition_change(
        rotation=rotation, effective_from=change, actor=staff, participants=five, now=change - timedelta(days=1)
    )
    # On main: A, B, C, D, A, A, B, ... (shift index mod 5).
    assert _sequence(team, MON, MON + timedelta(weeks=12)) == [a, b, c, d, a, b, c, d, e, a, b, c]


def test_removing_the_next_person_passes_their_turn_on(team, five, staff):
    a, b, c, d, _ = (p.pk for p in five)
    rotation = _weekly(team, five[:4], staff, positions=("primary", "secondary"))
    change = _handoff(team, MON, 5)  # next would be (B, C)
    services_rotations.rotation_definition_change(
        rotation=rotation,
        effective_from=change,
        actor=staff,
        participants=[five[0], five[2], five[3]],
        now=change - timedelta(days=1),
    )
    until = MON + timedelta(weeks=9)
    primary, secondary = _sequence(team, MON, until), _sequence(team, MON, until, "secondary")
    assert list(zip(primary, secondary, strict=True)) == [
        (a, b), (b, c), (c, d), (d, a), (a, b), (c, d), (d, a), (a, c), (c, d),
    ]  # fmt: skip


def test_redefining_an_era_in_place_and_later_changes_are_realigned(team, five, staff):
    a, b, c, d, e = (p.pk for p in five)
    rotation = _weekly(team, five[:4], staff)
    t1, t2 = _handoff(team, MON, 5), _handoff(team, MON, 8)
    now = MON + timedelta(days=1)
    # A reorder from t2 first, then the newcomer from t1; the t2 era must still continue the cycle.
    services_rotations.rotation_definition_change(
        rotation=rotation, effective_from=t2, actor=staff, participants=[five[3], five[2], five[1], five[0]], now=now
    )
    services_rotations.rotation_definition_change(
        rotation=rotation, effective_from=t1, actor=staff, participants=five, now=now
    )
    # t1: B next -> B C D E; at t2 A is next, then the t2 order D C B A.
    assert _sequence(team, MON, MON + timedelta(weeks=12)) == [a, b, c, d, a, b, c, d, a, d, c, b]
    # Same start again redefines that era in place (drop E again): still continuous.
    services_rotations.rotation_definition_change(
        rotation=rotation, effective_from=t1, actor=staff, participants=five[:4], now=now
    )
    assert _sequence(team, MON, MON + timedelta(weeks=12)) == [a, b, c, d, a, b, c, d, a, d, c, b]
    assert list(RotationEra.objects.filter(rotation=rotation).values_list("cycle_offset", flat=True)) == [0, 0, 3]


def test_started_later_eras_keep_their_offsets(team, five, staff):
    rotation = _weekly(team, five[:4], staff)
    t1, t2 = _handoff(team, MON, 3), _handoff(team, MON, 5)
    services_rotations.rotation_definition_change(
        rotation=rotation, effective_from=t2, actor=staff, participants=five, now=t2 - timedelta(days=1)
    )
    history = _sequence(team, t2, t2 + timedelta(weeks=6))
    # Backdated (staff) to before the later era, which has already started: its shifts stay history.
    services_rotations.rotation_definition_change(
        rotation=rotation, effective_from=t1, actor=staff, participants=five[1:4], now=t2 + timedelta(days=1)
    )
    assert _sequence(team, t2, t2 + timedelta(weeks=6)) == history


def test_api_definition_change_continues_the_cycle(api, team, five, role_users):
    a, b, c, d, e = (p.pk for p in five)
    start = (timezone.now() + timedelta(days=2)).date()
    rotation = services_rotations.rotation_create(
        team=team,
        name="Daily",
        time_zone="UTC",
        positions=["primary"],
        start_date=start,
        handoff_time=time(9, 0),
        shift_unit="days",
        shift_length=1,
        participants=five[:4],
        actor=role_users["staff"],
    )
    anchor = datetime.combine(start, time(9, 0), tzinfo=UTC)
    res = api(role_users["manager"]).post(
        f"/api/v1/rotations/{rotation.pk}/definition/",
        {"effective_from": (anchor + timedelta(days=5)).isoformat(), "participants": [a, b, c, d, e]},
        format="json",
    )
    assert res.status_code == 201, res.content
    assert _sequence(team, anchor, anchor + timedelta(days=12)) == [a, b, c, d, a, b, c, d, e, a, b, c]
