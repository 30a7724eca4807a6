"""Handover notes are reachable: from Now and the team page for whoever is on call, and in the API."""

import pytest
from django.urls import reverse
from django.utils import timezone

from rotations.models import HandoverNote
from rotations.selectors import teams_oncall_rows_get
from tests.escalations.api_helpers import api_client
from tests.factories import MembershipFactory, RotationEraFactory, RotationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def holder(team, role_users):
    rotation = RotationFactory(team=team, name="Main", positions=["primary"])
    RotationEraFactory(rotation=rotation, participants=[role_users["engineer"], role_users["manager"]])
    return teams_oncall_rows_get(team_ids=[team.pk], at=timezone.now())[team.pk][0].user


def test_the_person_on_call_is_offered_a_handover_note_on_now_and_the_team_page(login, team, role_users, holder):
    note_url = reverse("rotations:handover-note", args=[team.slug]) + "?position=primary"
    for page in (reverse("portal:now"), reverse("portal:team", args=[team.slug])):
        assert note_url in login(holder).get(page).content.decode()
    other = role_users["manager"] if holder == role_users["engineer"] else role_users["engineer"]
    assert note_url not in login(other).get(reverse("portal:now")).content.decode()
    # The form opens with the held position chosen.
    body = login(holder).get(note_url).content.decode()
    assert '<option value="primary" selected>' in body


@pytest.mark.parametrize(
    "data, error",
    [
        ({"position": "primary", "text": "   "}, "This field is required."),
        ({"position": "goalkeeper", "text": "db1 is flaky"}, "Select a valid choice."),
        ({"position": "", "text": "x" * 5001}, "at most 5000 characters"),
    ],
)
def test_bad_handover_note_is_refused_and_nothing_saved(login, team, holder, data, error):
    response = login(holder).post(reverse("rotations:handover-note", args=[team.slug]), data)
    assert response.status_code == 400 and error in response.content.decode()
    assert not HandoverNote.objects.exists()


def test_api_handover_notes_for_the_teams_paging_members(team, role_users, holder):
    url = f"/api/v1/teams/{team.pk}/handover-notes/"
    client = api_client(holder)
    response = client.post(url, {"position": "primary", "text": "db1 is flaky"}, format="json")
    assert response.status_code == 201, response.content
    note = HandoverNote.objects.get()
    assert (note.author, note.team, note.position, note.text) == (holder, team, "primary", "db1 is flaky")
    assert [n["text"] for n in client.get(url).json()["results"]] == ["db1 is flaky"]
    # Someone else's notes are not listed to them.
    assert (
        api_client(role_users["manager"] if holder != role_users["manager"] else role_users["engineer"])
        .get(url)
        .json()["results"]
        == []
    )
    assert api_client(role_users["viewer"]).post(url, {"text": "x"}, format="json").status_code == 403
    other_engineer = MembershipFactory(role="engineer").user
    assert api_client(other_engineer).post(url, {"text": "x"}, format="json").status_code == 404
    assert HandoverNote.objects.count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"position": "goalkeeper", "text": "x"}, "position"),
        ({"text": "   "}, "text"),
        ({"position": "primary"}, "text"),
    ],
)
def test_api_bad_handover_note_is_a_field_error(team, holder, body, field):
    response = api_client(holder).post(f"/api/v1/teams/{team.pk}/handover-notes/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not HandoverNote.objects.exists()
