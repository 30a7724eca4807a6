"""Every page renders for every role, shows an empty state, and keeps a constant number of queries."""

from datetime import timedelta

import pytest
from django.urls import reverse

from escalations.incidents.services import incident_trigger
from escalations.models import EscalationPolicy
from rotations.models import AuditEntry
from tests.factories import IncidentFactory, MembershipFactory, RotationEraFactory, RotationFactory

pytestmark = pytest.mark.django_db

PAGES = ["portal:now", "portal:incidents", "portal:schedule", "portal:profile", "portal:teams", "portal:insights"]


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_redirected_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("role", ["staff", "manager", "engineer", "viewer", "outsider"])
def test_pages_render_for_every_role(login, role_users, name, role):
    response = login(role_users[role]).get(reverse(name))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<title>" in body and "· Backstop</title>" in body
    assert 'aria-current="page"' in body or name == "portal:profile"


def test_now_lists_open_incidents_mine_first(login, team, role_users):
    engineer = role_users["engineer"]
    IncidentFactory(team=team, title="Other's problem")
    mine = IncidentFactory(team=team, title="My problem")
    mine.assignees.add(engineer)
    IncidentFactory(team=team, title="Long gone", status="resolved")
    body = login(engineer).get(reverse("portal:now")).content.decode()
    assert body.index("My problem") < body.index("Other&#x27;s problem")
    assert "Long gone" not in body and "yours" in body


def test_now_empty_states(login, role_users):
    body = login(role_users["outsider"]).get(reverse("portal:now")).content.decode()
    assert "All quiet." in body and "You are not in any team yet." in body
    assert "not installed" not in body


@pytest.mark.parametrize("n", [5, 50])
def test_now_query_count_constant(login, team, role_users, policy, django_assert_max_num_queries, n):
    for i in range(n):
        incident_trigger(team=team, title=f"i{i}").incident.assignees.add(role_users["engineer"])
    client = login(role_users["engineer"])
    client.get(reverse("portal:now"))
    with django_assert_max_num_queries(14):
        assert client.get(reverse("portal:now")).status_code == 200


def test_team_detail_shows_members_rotations_policies(login, team, role_users, policy):
    rotation = RotationFactory(team=team, name="Main rota")
    RotationEraFactory(rotation=rotation, participants=[role_users["engineer"], role_users["manager"]])
    AuditEntry.objects.create(
        team=team,
        actor=role_users["manager"],
        action="update",
        object_type="rotation",
        object_id=str(rotation.pk),
        object_repr="Main rota",
    )
    body = login(role_users["viewer"]).get(reverse("portal:team", args=[team.slug])).content.decode()
    assert "Main rota" in body and "Default" in body and role_users["engineer"].display_name in body
    assert "Edit team" not in body  # viewers do not manage
    body = login(role_users["manager"]).get(reverse("portal:team", args=[team.slug])).content.decode()
    assert "Edit team" in body and "New policy" in body


def test_team_detail_hidden_from_outsiders(login, team, role_users):
    assert login(role_users["outsider"]).get(reverse("portal:team", args=[team.slug])).status_code == 404
    assert login(role_users["outsider"]).get(reverse("portal:calendar", args=[team.slug])).status_code == 404


@pytest.mark.parametrize("n", [2, 20])
def test_team_detail_query_count_constant(login, team, role_users, policy, django_assert_max_num_queries, n):
    for _ in range(n):
        rotation = RotationFactory(team=team)
        RotationEraFactory(rotation=rotation, participants=[MembershipFactory(team=team).user for _ in range(2)])
    client = login(role_users["manager"])
    client.get(reverse("portal:team", args=[team.slug]))
    # 24 for the page, plus the roster-health list (one roster load: five queries, and its alerts) and the
    # timeline (incidents, change events).
    with django_assert_max_num_queries(32):
        assert client.get(reverse("portal:team", args=[team.slug])).status_code == 200


@pytest.mark.parametrize("view", ["week", "month"])
def test_calendar_renders(login, team, role_users, view):
    rotation = RotationFactory(team=team)
    RotationEraFactory(rotation=rotation, participants=[role_users["engineer"]])
    response = login(role_users["engineer"]).get(
        reverse("portal:calendar", args=[team.slug]), {"view": view, "start": "2026-03-02"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert {"week": "Mon 02 Mar – Mon 09 Mar 2026", "month": "Sun 01 Mar – Wed 01 Apr 2026"}[view] in body
    assert "cal-bar rotation" in body


def test_override_form_is_prefilled_from_a_bar(login, team, role_users):
    rotation = RotationFactory(team=team)
    url = reverse("portal:team_override_new", args=[team.slug])
    body = (
        login(role_users["engineer"])
        .get(
            url,
            {"rotation": rotation.pk, "position": "primary", "start": "2026-03-02T09:00", "end": "2026-03-09T09:00"},
        )
        .content.decode()
    )
    assert 'value="primary"' in body and 'value="2026-03-02T09:00"' in body


# --------------------------------------------------------------------------- policies


def _policy_post(**over):
    data = {
        "name": "Night",
        "description": "",
        "repeat": "1",
        "ack_timeout_minutes": "",
        "auto_resolve_minutes": "",
        "reassign_on_handover": "on",
        "make_default": "on",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-delay_minutes": "5",
        "steps-0-positions": "primary",
        "steps-1-delay_minutes": "10",
        "steps-1-managers": "on",
    }
    data.update(over)
    return data


def test_policy_create_writes_steps_and_audit(login, team, role_users):
    RotationFactory(team=team, positions=["primary", "secondary"])
    response = login(role_users["manager"]).post(reverse("portal:policy_create", args=[team.slug]), _policy_post())
    assert response.status_code == 302
    policy = EscalationPolicy.objects.get(team=team, name="Night")
    steps = list(policy.steps.order_by("order").prefetch_related("targets"))
    assert [s.delay for s in steps] == [timedelta(minutes=5), timedelta(minutes=10)]
    assert [t.kind for t in steps[0].targets.all()] == ["position"]
    assert [t.kind for t in steps[1].targets.all()] == ["managers"]
    team.refresh_from_db()
    assert team.escalation_policy == policy
    assert AuditEntry.objects.filter(team=team, object_type="escalations.escalationpolicy", action="create").exists()


def test_policy_validation_says_what_is_wrong(login, team, role_users):
    RotationFactory(team=team, positions=["primary"])
    client = login(role_users["manager"])
    response = client.post(
        reverse("portal:policy_create", args=[team.slug]), _policy_post(**{"steps-0-positions": "tertiary"})
    )
    assert response.status_code == 400
    assert "no rotation of" in response.content.decode() and "tertiary" in response.content.decode()
    response = client.post(reverse("portal:policy_create", args=[team.slug]), _policy_post(**{"steps-1-managers": ""}))
    assert "Choose who this step notifies" in response.content.decode()
    assert not EscalationPolicy.objects.filter(team=team).exists()


def test_policy_edit_updates_and_audits(login, team, role_users, policy):
    client = login(role_users["manager"])
    url = reverse("portal:policy_edit", args=[policy.pk])
    assert "steps-0-delay_minutes" in client.get(url).content.decode()
    response = client.post(url, _policy_post(name="Default", **{"steps-0-positions": "", "steps-0-whole_team": "on"}))
    assert response.status_code == 302
    assert list(policy.steps.order_by("order").values_list("targets__kind", flat=True)) == ["team", "managers"]
    assert AuditEntry.objects.filter(object_type="escalations.escalationpolicy", action="update").exists()


@pytest.mark.parametrize("role,status", [("engineer", 403), ("viewer", 403), ("outsider", 404), ("staff", 200)])
def test_policy_forms_need_a_manager(login, team, role_users, role, status):
    response = login(role_users[role]).get(reverse("portal:policy_create", args=[team.slug]))
    assert response.status_code == status


@pytest.mark.parametrize("role,status", [("manager", 403), ("engineer", 403), ("staff", 200)])
def test_team_create_is_staff_only(login, role_users, role, status):
    assert login(role_users[role]).get(reverse("portal:team_create")).status_code == status


# ---------------------------------------------------------------------------- insights


def test_insights_and_csv(login, team, role_users, policy):
    from escalations.incidents.advance import incident_advance

    inc = incident_trigger(team=team, title="x", source="alert", severity="critical").incident
    incident_advance(incident_id=inc.pk)
    client = login(role_users["viewer"])
    body = client.get(reverse("portal:insights"), {"team": team.pk, "days": 7}).content.decode()
    assert "<svg" in body and "<title" in body and "Healthy: 10–20 %" in body
    response = client.get(reverse("portal:insights_csv"), {"team": team.pk, "days": 7})
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    assert "incidents,,1" in text and "incidents_by_severity,critical,1" in text
    assert client.get(reverse("portal:insights"), {"team": 999999}).status_code == 404


@pytest.mark.parametrize("n", [5, 50])
def test_insights_query_count_constant(login, team, role_users, policy, django_assert_max_num_queries, n):
    from escalations.incidents.advance import incident_advance

    for i in range(n):
        incident_advance(incident_id=incident_trigger(team=team, title=f"i{i}").incident.pk)
    client = login(role_users["viewer"])
    client.get(reverse("portal:insights"))
    with django_assert_max_num_queries(20):
        assert client.get(reverse("portal:insights")).status_code == 200


# ------------------------------------------------------------------------------ outbox


def test_outbox_hidden_when_twilio_configured(login, role_users):
    assert login(role_users["engineer"]).get(reverse("portal:outbox")).status_code == 404


def test_outbox_sms_reply_acknowledges_through_the_webhook_handler(login, team, role_users, incident, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    engineer = role_users["engineer"]
    number = engineer.contact_methods.get().value
    client = login(engineer)
    assert client.get(reverse("portal:outbox")).status_code == 200
    response = client.post(
        reverse("portal:outbox_sms_reply"), {"from_number": number, "body": f"{incident.pk}A"}, follow=True
    )
    assert "acknowledged" in response.content.decode()
    event = incident.timeline.get(kind="acknowledged")
    assert event.via == "sms" and event.actor == engineer
    # Someone else's number is refused.
    other = role_users["manager"].contact_methods.get().value
    assert client.post(reverse("portal:outbox_sms_reply"), {"from_number": other, "body": "1A"}).status_code == 403


def test_outbox_voice_key_acts_as_the_paged_person(login, team, role_users, incident, settings):
    from escalations.models import OutboxMessage

    settings.TWILIO_ACCOUNT_SID = ""
    page = incident.pages.get(user=role_users["engineer"])
    item = OutboxMessage.objects.create(
        channel="voice",
        to=page.destination,
        body="Incident call",
        page=page,
        incident=incident,
        recipient=role_users["engineer"],
    )
    body = login(role_users["engineer"]).get(reverse("portal:outbox")).content.decode()
    assert "Incident call" in body and "1 · Ack" in body
    # Nobody else sees, let alone answers, someone else's call.
    assert (
        login(role_users["manager"]).post(reverse("portal:outbox_voice_key", args=[item.pk]), {"key": "1"}).status_code
        == 404
    )
    login(role_users["engineer"]).post(reverse("portal:outbox_voice_key", args=[item.pk]), {"key": "1"})
    event = incident.timeline.get(kind="acknowledged")
    assert event.via == "voice" and event.actor == role_users["engineer"]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_insights_csv_neutralises_formulas(login, team, role_users, policy, prefix):
    import csv
    import io

    from escalations.incidents.advance import incident_advance

    engineer = role_users["engineer"]
    engineer.email = f'{prefix}HYPERLINK("http://evil.example";"x")@example.com'
    engineer.save(update_fields=["email"])
    from escalations.models import Page

    incident_advance(incident_id=incident_trigger(team=team, title="x", severity="critical").incident.pk)
    assert Page.objects.filter(user=engineer).update(status="sent") == 1
    response = login(role_users["viewer"]).get(reverse("portal:insights_csv"), {"team": team.pk, "days": 7})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    keys = [row[1] for row in rows if row[0] == "pages"]
    assert keys == ["'" + engineer.email]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
