"""The portal's rotation edit page continues the participant cycle (same service as the API)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from rotations import selectors
from rotations.services import rotations as services_rotations
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def test_adding_a_person_on_the_edit_page_gives_nobody_two_days(login, team, role_users):
    people = [
        MembershipFactory(team=team, user=UserFactory(full_name=f"Person {c}"), role="engineer").user for c in "ABCDE"
    ]
    a, b, c, d, e = (p.pk for p in people)
    start = (timezone.now() + timedelta(days=2)).astimezone(BERLIN).date()
    rotation = services_rotations.rotation_create(
        team=team,
        name="Daily",
        time_zone="Europe/Berlin",
        positions=["primary"],
        start_date=start,
        handoff_time=time(9, 0),
        shift_unit="days",
        shift_length=1,
        participants=people[:4],
        actor=role_users["staff"],
    )
    manager = role_users["manager"]
    manager.time_zone = "Europe/Berlin"
    manager.save(update_fields=["time_zone"])
    change = datetime.combine(start + timedelta(days=5), time(9, 0))
    form = {
        "name": "Daily",
        "positions": "primary",
        "start_date": start.isoformat(),
        "handoff_time": "09:00",
        "shift_unit": "days",
        "shift_length": "1",
        "effective_from": change.strftime("%Y-%m-%dT%H:%M"),
        **{f"order_{p.pk}": str(n) for n, p in enumerate(people, start=1)},
    }
    response = login(manager).post(reverse("portal:rotation_edit", args=[rotation.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    since = datetime.combine(start, time(9, 0), tzinfo=BERLIN)
    shifts = selectors.team_shifts_get(team=team, since=since, until=since + timedelta(days=12, hours=-1))
    # On main: A, B, C, D, A, A, B, ... (shift index mod the new headcount).
    assert [s.user_id for s in shifts] == [a, b, c, d, a, b, c, d, e, a, b, c]
