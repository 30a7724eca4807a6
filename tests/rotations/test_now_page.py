"""The portal "Now" page shows each team's on-call table."""

from datetime import timedelta

import pytest
import time_machine

from tests.factories import ExclusionFactory
from tests.rotations.conftest import MON

pytestmark = pytest.mark.django_db


def test_now_page_shows_holders_cover_and_until(client, roster, role_users, django_assert_max_num_queries):
    rotation, people = roster
    ExclusionFactory(user=people[0], start=MON, end=MON + timedelta(days=1))
    client.force_login(role_users["viewer"])
    with time_machine.travel(MON + timedelta(hours=1), tick=False), django_assert_max_num_queries(18):
        html = client.get("/").content.decode()
    assert rotation.team.name in html
    assert "Ana Kim" in html and "covering for Maria Lopez (vacation)" in html
    assert "Jonas Berg" in html
    # Until is shown in the viewer's zone (Europe/Berlin): cover ends Tue 09:00.
    assert "Tue 03 Mar 09:00" in html


def test_now_page_for_user_without_teams(client, role_users):
    client.force_login(role_users["outsider"])
    assert "You are not in any team yet" in client.get("/").content.decode()
