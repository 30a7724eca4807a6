"""Open an incident by hand from the portal: "page the on-call of team X" (portal.views.incident_new)."""

import pytest
from django.urls import reverse

from escalations.models import Incident, TimelineEvent
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

URL = "/incidents/new"


def _post(client, to_team, **extra):
    data = {"team": to_team.slug, "title": "Checkout returns 502", "details": "Since 14:02", "urgency": "high"}
    data |= {"severity": "critical", "nonce": "n0nce-for-test"} | extra
    return client.post(URL, data)


def test_engineer_pages_their_team_by_hand(login, team, role_users, policy):
    client = login(role_users["engineer"])
    page = client.get(URL + f"?team={team.slug}").content.decode()
    assert f'<option value="{team.slug}" selected>' in page
    response = _post(client, team)
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("portal:incident", args=[incident.pk])
    assert (incident.team, incident.source, incident.title, incident.details) == (
        team,
        Incident.Source.MANUAL,
        "Checkout returns 502",
        "Since 14:02",
    )
    assert (incident.severity, incident.urgency, incident.policy_id) == ("critical", "high", policy.pk)
    opened = incident.timeline.get(kind=TimelineEvent.Kind.CREATED)
    assert (opened.actor, opened.via) == (role_users["engineer"], TimelineEvent.Via.WEB)
    # A double tap sends the same form twice: still one incident.
    assert _post(client, team).status_code == 302
    assert Incident.objects.count() == 1


def test_the_page_a_team_action_is_on_incidents_now_and_the_team_page(login, team, role_users):
    client = login(role_users["engineer"])
    assert reverse("portal:incident_new") in client.get(reverse("portal:incidents")).content.decode()
    assert reverse("portal:incident_new") in client.get(reverse("portal:now")).content.decode()
    assert (
        f"{reverse('portal:incident_new')}?team={team.slug}"
        in client.get(reverse("portal:team", args=[team.slug])).content.decode()
    )
    assert (
        "Page the on-call"
        not in login(role_users["viewer"]).get(reverse("portal:team", args=[team.slug])).content.decode()
    )


@pytest.mark.parametrize("who", ["viewer", "outsider", "other_engineer", "other_manager"])
def test_only_the_teams_paging_members_may_page_it(login, team, role_users, policy, who):
    if who.startswith("other_"):
        role_users[who] = MembershipFactory(role=who.removeprefix("other_")).user
    response = _post(login(role_users[who]), team)
    assert response.status_code == 400
    body = response.content.decode()
    assert "cannot page it" in body if who == "viewer" else "No such team." in body
    assert not Incident.objects.exists()


def test_staff_page_any_team(login, team, role_users, policy):
    assert _post(login(role_users["staff"]), team).status_code == 302
    assert Incident.objects.get().team == team


@pytest.mark.parametrize(
    "change, error",
    [
        ({"title": "  "}, "This field is required."),
        ({"urgency": "whenever"}, "Select a valid choice."),
        ({"severity": "apocalyptic"}, "Select a valid choice."),
        ({"team": ""}, "This field is required."),
        ({"team": "no-such-team"}, "No such team."),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_opens(login, team, role_users, policy, change, error):
    response = _post(login(role_users["engineer"]), team, **change)
    assert response.status_code == 400 and error in response.content.decode()
    assert not Incident.objects.exists()
