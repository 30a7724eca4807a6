"""The team member page: who may use it, search, add, change role, remove, and the refusals it shows."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rotations.models import AuditEntry, Membership
from tests.factories import MembershipFactory, RotationEraFactory, RotationFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _url(name, team, *args):
    return reverse(f"portal:{name}", args=[team.slug, *args])


@pytest.mark.parametrize(
    "role,status", [("manager", 200), ("staff", 200), ("engineer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_page_is_for_managers_and_staff(login, team, role_users, role, status):
    assert login(role_users[role]).get(_url("team_members", team)).status_code == status


def test_team_page_links_the_member_page_for_managers_only(login, team, role_users):
    assert _url("team_members", team) in login(role_users["manager"]).get(_url("team", team)).content.decode()
    assert _url("team_members", team) not in login(role_users["engineer"]).get(_url("team", team)).content.decode()


def test_page_lists_members_with_their_roles(login, team, role_users):
    body = login(role_users["manager"]).get(_url("team_members", team)).content.decode()
    for role in ("manager", "engineer", "viewer"):
        assert role_users[role].display_name in body
        assert f'<option value="{role}" selected>' in body


def test_search_finds_people_outside_the_team(login, team, role_users):
    ana = UserFactory(full_name="Ana Kim", email="ana@example.com")
    UserFactory(full_name="Anabel Gone", is_active=False)
    client = login(role_users["manager"])
    body = client.get(_url("team_members", team), {"q": "ana"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.startswith('<div id="member-search-results"')  # the partial only
    assert "Ana Kim" in body and f'name="user" value="{ana.pk}"' in body
    assert "Anabel Gone" not in body  # deactivated
    member = role_users["engineer"].display_name
    assert member not in client.get(_url("team_members", team), {"q": member}).content.decode().split("h-add")[1]
    assert "At least 2 characters" in client.get(_url("team_members", team), {"q": "a"}).content.decode()


def test_add_member_with_a_role(login, team, role_users):
    ana = UserFactory(full_name="Ana Kim")
    client = login(role_users["manager"])
    response = client.post(_url("team_member_add", team), {"user": ana.pk, "role": "viewer"}, follow=True)
    assert response.redirect_chain[-1][0] == _url("team_members", team)
    assert "Added Ana Kim to" in response.content.decode()
    assert Membership.objects.get(team=team, user=ana).role == "viewer"
    entry = AuditEntry.objects.get(team=team, object_type="rotations.membership", action="create")
    assert entry.actor == role_users["manager"]


def test_add_refusals_say_what_is_wrong(login, team, role_users):
    client = login(role_users["manager"])
    response = client.post(_url("team_member_add", team), {"user": role_users["engineer"].pk, "role": "manager"})
    assert response.status_code == 400 and "is already in" in response.content.decode()
    response = client.post(_url("team_member_add", team), {"user": 999999, "role": "viewer"})
    assert response.status_code == 400 and "no longer exists" in response.content.decode()


def test_change_role(login, team, role_users):
    engineer = role_users["engineer"]
    response = login(role_users["manager"]).post(_url("team_member_role", team, engineer.pk), {"role": "manager"})
    assert response.status_code == 302
    assert Membership.objects.get(team=team, user=engineer).role == "manager"
    assert AuditEntry.objects.filter(team=team, object_type="rotations.membership", action="update").exists()


def test_last_manager_cannot_demote_themselves(login, team, role_users):
    manager = role_users["manager"]
    response = login(manager).post(_url("team_member_role", team, manager.pk), {"role": "engineer"})
    assert response.status_code == 400
    assert "is the last manager of" in response.content.decode()
    assert Membership.objects.get(team=team, user=manager).role == "manager"


def test_remove_member(login, team, role_users):
    viewer = role_users["viewer"]
    response = login(role_users["manager"]).post(_url("team_member_remove", team, viewer.pk))
    assert response.status_code == 302
    assert not Membership.objects.filter(team=team, user=viewer).exists()
    assert AuditEntry.objects.filter(team=team, object_type="rotations.membership", action="delete").exists()


def test_remove_rotation_participant_is_refused_naming_the_rotation(login, team, role_users):
    engineer = role_users["engineer"]
    RotationEraFactory(
        rotation=RotationFactory(team=team, name="Weekly"),
        effective_from=timezone.now() - timedelta(days=3),
        participants=[engineer],
    )
    response = login(role_users["staff"]).post(_url("team_member_remove", team, engineer.pk))
    assert response.status_code == 400
    assert "rotation Weekly" in response.content.decode()
    assert Membership.objects.filter(team=team, user=engineer).exists()


def test_other_teams_members_are_not_found(login, team, role_users):
    stranger = MembershipFactory(team=TeamFactory()).user
    client = login(role_users["manager"])
    assert client.post(_url("team_member_remove", team, stranger.pk)).status_code == 404
    assert client.post(_url("team_member_role", team, stranger.pk), {"role": "viewer"}).status_code == 404


@pytest.mark.parametrize("role,status", [("engineer", 403), ("viewer", 403), ("outsider", 404)])
def test_writes_are_refused_without_permission(login, team, role_users, role, status):
    client = login(role_users[role])
    viewer = role_users["viewer"]
    newcomer = UserFactory()
    assert client.post(_url("team_member_add", team), {"user": newcomer.pk, "role": "viewer"}).status_code == status
    assert client.post(_url("team_member_role", team, viewer.pk), {"role": "manager"}).status_code == status
    assert client.post(_url("team_member_remove", team, viewer.pk)).status_code == status
    assert Membership.objects.filter(team=team).count() == 3


def test_manager_leaving_lands_on_the_teams_page(login, team, role_users):
    other = MembershipFactory(team=team, role="manager").user
    manager = role_users["manager"]
    response = login(manager).post(_url("team_member_remove", team, manager.pk))
    assert response.status_code == 302 and response["Location"] == reverse("portal:teams")
    assert Membership.objects.filter(team=team, role="manager").get().user == other
