from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escalations.incidents.services import incident_trigger
from escalations.models import Incident, TimelineEvent
from tests.factories import IncidentFactory, MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

ROLES_SEE = {"staff": 200, "manager": 200, "engineer": 200, "viewer": 200, "outsider": 404}


@pytest.mark.parametrize("role,status", ROLES_SEE.items())
def test_detail_visibility_by_role(login, role_users, incident, role, status):
    response = login(role_users[role]).get(reverse("portal:incident", args=[incident.pk]))
    assert response.status_code == status


def test_anonymous_is_sent_to_login(client, incident):
    response = client.get(reverse("portal:incident", args=[incident.pk]))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_detail_shows_timeline_payload_and_engine_state(login, role_users, incident):
    body = login(role_users["engineer"]).get(reverse("portal:incident", args=[incident.pk])).content.decode()
    assert "Checkout is down" in body
    assert "CheckoutDown" in body  # labels
    assert "Next: step 2 (" in body and role_users["manager"].display_name in body
    assert "Opened by system" in body and "Paging " in body and "Step 1/" in body  # timeline rows
    assert 'id="act-acknowledge"' in body
    assert "<kbd>a</kbd>" in body


def test_viewer_sees_no_buttons(login, role_users, incident):
    body = login(role_users["viewer"]).get(reverse("portal:incident", args=[incident.pk])).content.decode()
    assert 'id="act-acknowledge"' not in body
    assert "only the team's engineers and managers can act on it" in body


ACTIONS = [
    ("incident_acknowledge", {}, TimelineEvent.Kind.ACKNOWLEDGED),
    ("incident_resolve", {}, TimelineEvent.Kind.RESOLVED),
    ("incident_escalate", {}, TimelineEvent.Kind.ESCALATED),
    ("incident_note", {"text": "Looking at the DB"}, TimelineEvent.Kind.NOTE),
    ("incident_snooze", {"minutes": "60"}, TimelineEvent.Kind.SNOOZED),
]


@pytest.mark.parametrize("name,data,kind", ACTIONS)
@pytest.mark.parametrize("role,status", [("viewer", 403), ("outsider", 404)])
def test_actions_refused_without_permission(login, role_users, incident, name, data, kind, role, status):
    response = login(role_users[role]).post(reverse(f"portal:{name}", args=[incident.pk]), data)
    assert response.status_code == status
    assert not incident.timeline.filter(kind=kind).exists()


@pytest.mark.parametrize("name,data,kind", ACTIONS)
@pytest.mark.parametrize("role", ["engineer", "manager", "staff"])
def test_actions_land_on_the_timeline_via_web(login, role_users, incident, name, data, kind, role):
    user = role_users[role]
    response = login(user).post(reverse(f"portal:{name}", args=[incident.pk]), data)
    assert response.status_code == 302
    event = incident.timeline.get(kind=kind)
    assert event.actor == user
    assert event.via == TimelineEvent.Via.WEB


def test_get_is_not_allowed_for_actions(login, role_users, incident):
    response = login(role_users["engineer"]).get(reverse("portal:incident_acknowledge", args=[incident.pk]))
    assert response.status_code == 405


def test_acknowledge_with_htmx_returns_the_panel_and_changes_state(login, role_users, incident):
    response = login(role_users["engineer"]).post(
        reverse("portal:incident_acknowledge", args=[incident.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="messages" hx-swap-oob="true">')
    assert 'id="incident-panel"' in body and "<html" not in body
    assert "Acknowledged #" in body
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.acknowledged_by == role_users["engineer"]


def test_resolve_escalate_and_move_ask_for_confirmation(login, role_users, incident):
    body = login(role_users["engineer"]).get(reverse("portal:incident", args=[incident.pk])).content.decode()
    assert body.count("hx-confirm=") == 3


def test_escalate_pages_the_next_step(login, role_users, incident):
    login(role_users["engineer"]).post(reverse("portal:incident_escalate", args=[incident.pk]))
    incident.refresh_from_db()
    assert incident.step == 1
    assert set(incident.assignees.all()) == {role_users["manager"]}


def test_reassign_only_to_team_members(login, role_users, incident):
    client = login(role_users["engineer"])
    url = reverse("portal:incident_reassign", args=[incident.pk])
    client.post(url, {"users": [role_users["outsider"].pk]})
    assert not incident.timeline.filter(kind="reassigned").exists()
    client.post(url, {"users": [role_users["viewer"].pk]})
    assert not incident.timeline.filter(kind="reassigned").exists()
    elsewhere = MembershipFactory(team=TeamFactory(), role="engineer").user
    inactive = MembershipFactory(team=incident.team, role="engineer", user__is_active=False).user
    for user in (elsewhere, inactive):
        client.post(url, {"users": [role_users["manager"].pk, user.pk]})
        assert not incident.timeline.filter(kind="reassigned").exists()
    client.post(url, {"users": [role_users["manager"].pk]})
    event = incident.timeline.get(kind="reassigned")
    assert event.via == "web" and event.data["user_ids"] == [role_users["manager"].pk]
    assert list(incident.assignees.all()) == [role_users["manager"]]


def test_snooze_rejects_unknown_durations(login, role_users, incident):
    login(role_users["engineer"]).post(reverse("portal:incident_snooze", args=[incident.pk]), {"minutes": "999"})
    assert not incident.timeline.filter(kind="snoozed").exists()


def test_snooze_sets_until_one_hour(login, role_users, incident):
    before = timezone.now()
    login(role_users["engineer"]).post(reverse("portal:incident_snooze", args=[incident.pk]), {"minutes": "60"})
    incident.refresh_from_db()
    assert timedelta(minutes=59) < incident.snoozed_until - before < timedelta(minutes=61)


def test_empty_note_is_refused_with_a_message(login, role_users, incident):
    response = login(role_users["engineer"]).post(
        reverse("portal:incident_note", args=[incident.pk]), {"text": "  "}, follow=True
    )
    assert "A note needs some text." in response.content.decode()
    assert not incident.timeline.filter(kind="note").exists()


# ----------------------------------------------------------------------------- list


def test_list_filters_and_visibility(login, team, role_users):
    other = TeamFactory()
    IncidentFactory(team=team, title="Mine critical", severity="critical")
    IncidentFactory(team=team, title="Mine info", severity="info", status="resolved")
    IncidentFactory(team=other, title="Someone else's")
    client = login(role_users["viewer"])
    body = client.get(reverse("portal:incidents")).content.decode()
    assert "Mine critical" in body and "Mine info" in body and "Someone else" not in body
    body = client.get(reverse("portal:incidents"), {"severity": "critical"}).content.decode()
    assert "Mine critical" in body and "Mine info" not in body
    body = client.get(reverse("portal:incidents"), {"status": "open"}).content.decode()
    assert "Mine critical" in body and "Mine info" not in body


def test_list_filter_assigned_to_me_and_time_range(login, team, role_users):
    engineer = role_users["engineer"]
    mine = IncidentFactory(team=team, title="Assigned one")
    mine.assignees.add(engineer)
    IncidentFactory(team=team, title="Old one", created_at=timezone.now() - timedelta(days=10))
    client = login(engineer)
    body = client.get(reverse("portal:incidents"), {"mine": "on"}).content.decode()
    assert "Assigned one" in body and "Old one" not in body
    body = client.get(reverse("portal:incidents"), {"range": "7d"}).content.decode()
    assert "Assigned one" in body and "Old one" not in body


def test_list_htmx_partial_highlights_new_incidents(login, team, role_users):
    old = IncidentFactory(team=team, title="Old")
    new = IncidentFactory(team=team, title="Fresh")
    response = login(role_users["viewer"]).get(reverse("portal:incidents"), {"seen": old.pk}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<div id="incident-list"')
    assert 'hx-trigger="every 10s"' in body
    assert body.count('class="is-new"') == 1
    assert f"seen={new.pk}" in body  # the next poll only highlights newer ones


def test_list_empty_state(login, role_users):
    body = login(role_users["viewer"]).get(reverse("portal:incidents")).content.decode()
    assert "No incidents match." in body


def test_list_is_paginated(login, team, role_users):
    for n in range(30):
        IncidentFactory(team=team, title=f"Bulk {n}")
    body = login(role_users["viewer"]).get(reverse("portal:incidents")).content.decode()
    assert "Page 1 of 2" in body and body.count("Bulk ") == 25


def _bulk(team, users, n):
    for i in range(n):
        inc = incident_trigger(team=team, title=f"Bulk {i}", source="alert", payload={"i": i}).incident
        inc.assignees.add(*users)


@pytest.mark.parametrize("n", [5, 50])
def test_list_query_count_is_constant(login, team, role_users, policy, django_assert_max_num_queries, n):
    _bulk(team, [role_users["engineer"], role_users["manager"]], n)
    client = login(role_users["engineer"])
    client.get(reverse("portal:incidents"))  # warm the session
    with django_assert_max_num_queries(9):
        assert client.get(reverse("portal:incidents")).status_code == 200


@pytest.mark.parametrize("n", [5, 50])
def test_detail_query_count_is_constant(login, team, role_users, policy, incident, django_assert_max_num_queries, n):
    for i in range(n):
        incident_trigger(team=team, title="again", dedup_key="", source="alert")
        from escalations.incidents.services import incident_note_add

        incident_note_add(incident=incident, by=role_users["engineer"], text=f"note {i}", via="web")
    client = login(role_users["engineer"])
    client.get(reverse("portal:incident", args=[incident.pk]))
    with django_assert_max_num_queries(14):
        assert client.get(reverse("portal:incident", args=[incident.pk])).status_code == 200


def test_phone_incident_without_a_call_record_says_so(login, team, role_users, policy):
    incident = incident_trigger(team=team, title="Caller: server room flooded", source="phone").incident
    body = login(role_users["engineer"]).get(reverse("portal:incident", args=[incident.pk])).content.decode()
    assert "Emergency call" in body and "No call record is linked to this incident." in body


def test_other_team_member_cannot_act(login, incident):
    stranger = MembershipFactory(role="engineer").user
    response = login(stranger).post(reverse("portal:incident_acknowledge", args=[incident.pk]))
    assert response.status_code == 404
