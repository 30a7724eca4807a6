"""A team's Slack channel and on-call user group (portal and API, one service), and connecting Slack."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.models import ContactMethod
from tests.escalations.api_helpers import api_client
from tests.escalations.slack_helpers import fake_slack  # noqa: F401 (fixture)
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db


def _form(team, **slack):
    return {"name": team.name, "slug": team.slug, "time_zone": team.time_zone, "description": "", **slack}


def test_a_manager_sets_the_teams_slack_channel_and_user_group(team):
    manager = MembershipFactory(team=team, role="manager").user
    client = Client()
    client.force_login(manager)
    response = client.post(
        f"/teams/{team.slug}/edit", _form(team, slack_channel_id="C0PAYMENTS1", slack_usergroup_id="S0ONCALL12")
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.slack_channel_id, team.slack_usergroup_id) == ("C0PAYMENTS1", "S0ONCALL12")
    assert 'value="C0PAYMENTS1"' in client.get(f"/teams/{team.slug}/edit").content.decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [("slack_channel_id", "#payments"), ("slack_channel_id", "c0lowercase"), ("slack_usergroup_id", "@oncall")],
)
def test_a_channel_name_instead_of_an_id_is_refused_with_the_field_named(team, field, value):
    manager = MembershipFactory(team=team, role="manager").user
    client = Client()
    client.force_login(manager)
    response = client.post(f"/teams/{team.slug}/edit", _form(team, **{field: value}))
    assert response.status_code == 400
    assert "Enter a Slack" in response.content.decode()
    team.refresh_from_db()
    assert getattr(team, field) == ""


def test_engineers_and_other_teams_managers_cannot_set_it(team):
    engineer = MembershipFactory(team=team, role="engineer").user
    other_manager = MembershipFactory(team=TeamFactory(), role="manager").user
    for user, status in ((engineer, 403), (other_manager, 404)):
        client = Client()
        client.force_login(user)
        response = client.post(f"/teams/{team.slug}/edit", _form(team, slack_channel_id="C0PAYMENTS1"))
        assert response.status_code == status
    team.refresh_from_db()
    assert team.slack_channel_id == ""


def test_the_api_takes_the_same_ids_through_the_same_service(team):
    manager = MembershipFactory(team=team, role="manager").user
    client = api_client(manager)
    bad = client.patch(f"/api/v1/teams/{team.pk}/", {"slack_channel_id": "#payments"}, format="json")
    assert bad.status_code == 400 and "slack_channel_id" in bad.content.decode()
    good = client.patch(f"/api/v1/teams/{team.pk}/", {"slack_channel_id": "C0PAYMENTS1"}, format="json")
    assert good.status_code == 200 and good.json()["slack_channel_id"] == "C0PAYMENTS1"


def test_connect_slack_without_slack_configured_says_so(team):
    user = MembershipFactory(team=team, role="engineer").user
    client = Client()
    client.force_login(user)
    page = client.get("/profile/").content.decode()
    assert "Connect Slack" not in page
    response = client.post("/profile/methods/slack", follow=True)
    assert "Slack is not configured" in response.content.decode()
    assert not ContactMethod.objects.filter(user=user).exists()


def test_connect_slack_adds_a_verified_method(team, fake_slack):  # noqa: F811 (the imported fixture)
    user = MembershipFactory(team=team, role="engineer").user
    fake_slack.add_user("U0ME", user.email)
    client = Client()
    client.force_login(user)
    assert "Connect Slack" in client.get("/profile/").content.decode()
    client.post("/profile/methods/slack")
    method = ContactMethod.objects.get(user=user)
    assert (method.kind, method.value, method.is_verified) == ("slack", "U0ME", True)


def test_slack_cannot_be_added_as_a_typed_method(team):
    user = MembershipFactory(team=team, role="engineer").user
    client = Client()
    client.force_login(user)
    response = client.post("/profile/methods", {"kind": "slack", "value": "U0SOMEONE"})
    assert response.status_code == 400
    assert not ContactMethod.objects.filter(user=user).exists()
