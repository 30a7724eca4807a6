"""Rotating the personal and team calendar links: portal buttons and API actions."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from rotations.models import AuditEntry

pytestmark = pytest.mark.django_db


def _feed(client, kind, token):
    return client.get(reverse(f"ical:{kind}", kwargs={"token": token})).status_code


def test_rotate_my_calendar_link_from_the_schedule_page(login, role_users, client):
    user = role_users["engineer"]
    old = user.ical_token
    web = login(user)
    page = web.get(reverse("portal:schedule")).content.decode()
    assert reverse("portal:user_ical_rotate") in page and "Rotate my calendar link" in page
    assert _feed(client, "user", old) == 200
    response = web.post(reverse("portal:user_ical_rotate"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:schedule")
    user.refresh_from_db()
    assert user.ical_token != old
    assert _feed(client, "user", old) == 404 and _feed(client, "user", user.ical_token) == 200
    assert f"/ical/user/{user.ical_token}.ics" in web.get(reverse("portal:schedule")).content.decode()
    assert web.get(reverse("portal:user_ical_rotate")).status_code == 405


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("staff", 302),
        ("manager", 302),
        ("engineer", 403),
        ("viewer", 403),
        ("outsider", 404),
    ],
)
def test_rotate_team_calendar_link_is_for_managers(login, team, role_users, client, role, status):
    old = team.ical_token
    web = login(role_users[role])
    if role != "outsider":
        page = web.get(reverse("portal:team", args=[team.slug])).content.decode()
        assert f"/ical/team/{old}.ics" in page
        assert ("Rotate team calendar link" in page) is (status == 302)
    response = web.post(reverse("portal:team_ical_rotate", args=[team.slug]))
    assert response.status_code == status
    team.refresh_from_db()
    assert (team.ical_token != old) is (status == 302)
    if status == 302:
        assert _feed(client, "team", old) == 404 and _feed(client, "team", team.ical_token) == 200
        assert AuditEntry.objects.filter(team=team, changes__ical_token__isnull=False).exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("staff", 200),
        ("manager", 200),
        ("engineer", 403),
        ("viewer", 403),
        ("outsider", 404),
    ],
)
def test_api_team_ical_token_rotate(team, role_users, role, status):
    api = APIClient()
    api.force_authenticate(role_users[role])
    old = team.ical_token
    response = api.post(f"/api/v1/teams/{team.pk}/ical-token/rotate/")
    assert response.status_code == status
    team.refresh_from_db()
    if status == 200:
        assert team.ical_token != old
        assert response.json() == {"url": f"http://testserver/ical/team/{team.ical_token}.ics"}
    else:
        assert team.ical_token == old


def test_api_my_ical_token_rotate(role_users):
    user = role_users["viewer"]
    old = user.ical_token
    api = APIClient()
    assert api.post("/api/v1/me/ical-token/rotate/").status_code in (401, 403)
    api.force_authenticate(user)
    response = api.post("/api/v1/me/ical-token/rotate/")
    user.refresh_from_db()
    assert response.status_code == 200 and user.ical_token != old
    assert response.json() == {"url": f"http://testserver/ical/user/{user.ical_token}.ics"}
