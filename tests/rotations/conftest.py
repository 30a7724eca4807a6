from datetime import UTC, date, datetime, time

import pytest
from rest_framework.test import APIClient

from rotations import services
from tests.factories import MembershipFactory, UserFactory

MON = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin, first handoff


@pytest.fixture
def roster(team, role_users):
    """A "Payments" rotation on `team`: Maria, Jonas, Ana, Tom weekly from MON; plus the role users."""
    names = ("Maria Lopez", "Jonas Berg", "Ana Kim", "Tom Wu")
    people = [MembershipFactory(team=team, user=UserFactory(full_name=n), role="engineer").user for n in names]
    rotation = services.rotation_create(
        team=team, name="Payments", time_zone="Europe/Berlin", positions=["primary", "secondary"],
        start_date=date(2026, 3, 2), handoff_time=time(9, 0), shift_unit="weeks", shift_length=1,
        participants=people, restrictions=[], actor=role_users["staff"],
    )
    return rotation, people


@pytest.fixture
def api():
    def client_for(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for
