"""Incidents over the REST API: filters, actions, the permission matrix."""

from datetime import timedelta

import pytest
from django.utils import timezone

from escalations.incidents import advance, services
from escalations.models import Incident, TimelineEvent
from tests.escalations.api_helpers import api_client
from tests.factories import (
    T0,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    IncidentFactory,
    MembershipFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db
ROLES = ["staff", "manager", "engineer", "viewer", "outsider", "anonymous"]


@pytest.fixture
def clients(role_users):
    out = {role: api_client(user) for role, user in role_users.items()}
    out["anonymous"] = api_client()
    return out


@pytest.fixture
def incident(team, role_users):
    policy = EscalationPolicyFactory(team=team)
    EscalationTargetFactory(
        step=EscalationStepFactory(policy=policy, order=0), kind="user", position="", user=role_users["engineer"]
    )
    EscalationStepFactory(policy=policy, order=1)
    team.escalation_policy = policy
    team.save()
    return services.incident_trigger(team=team, title="DB down", dedup_key="db", source="alert").incident


def test_list_filters_and_ordering(team, role_users):
    other = TeamFactory()
    MembershipFactory(team=other, user=role_users["engineer"])
    a = IncidentFactory(team=team, severity="critical", source="alert", created_at=T0)
    b = IncidentFactory(team=team, severity="info", status="resolved", created_at=T0 + timedelta(days=1))
    c = IncidentFactory(team=other, severity="critical", created_at=T0 + timedelta(days=2))
    c.assignees.add(role_users["engineer"])
    IncidentFactory()  # another team, invisible
    client = api_client(role_users["engineer"])

    def ids(**params):
        r = client.get("/api/v1/incidents/", params)
        assert r.status_code == 200, r.content
        return [row["id"] for row in r.json()["results"]]

    assert ids() == [c.pk, b.pk, a.pk]
    assert ids(status="resolved") == [b.pk]
    assert set(ids(status=["triggered", "resolved"])) == {a.pk, b.pk, c.pk}
    assert ids(severity="critical", team=team.pk) == [a.pk]
    assert ids(source="alert") == [a.pk]
    assert ids(assigned_to_me="true") == [c.pk]
    assert ids(
        created_after=(T0 + timedelta(hours=1)).isoformat(),
        created_before=(T0 + timedelta(days=1, hours=1)).isoformat(),
    ) == [b.pk]
    assert ids(ordering="created_at") == [a.pk, b.pk, c.pk]
    page = client.get("/api/v1/incidents/", {"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [r["id"] for r in page["results"]] == [b.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "nope"},
        {"created_after": "yesterday"},
        {"team": "x"},
        {"limit": "-1"},
        {"ordering": "password"},
        {"assigned_to_me": "maybe"},
    ],
)
def test_bad_query_params_never_500(team, role_users, params):
    r = api_client(role_users["engineer"]).get("/api/v1/incidents/", params)
    assert r.status_code in (200, 400)
    if r.status_code == 400:
        assert r.json()["error"] and r.json()["errors"]


def test_detail_has_timeline_and_pages(incident, role_users):
    advance.incident_advance(incident_id=incident.pk, now=incident.next_action_at)
    body = api_client(role_users["viewer"]).get(f"/api/v1/incidents/{incident.pk}/").json()
    assert body["title"] == "DB down"
    assert [e["kind"] for e in body["timeline"]][0] == "created"
    assert isinstance(body["pages"], list)


def test_actions(incident, role_users):
    client = api_client(role_users["engineer"])
    base = f"/api/v1/incidents/{incident.pk}"
    r = client.post(f"{base}/acknowledge/")
    assert r.status_code == 200 and r.json() == {"changed": True, "incident": r.json()["incident"]}
    assert r.json()["incident"]["status"] == "acknowledged"
    assert client.post(f"{base}/acknowledge/").json()["changed"] is False
    assert client.post(f"{base}/note/", {"text": "Looking at it"}, format="json").status_code == 200
    assert client.post(f"{base}/note/", {"text": ""}, format="json").status_code == 400
    r = client.post(f"{base}/reassign/", {"user_ids": [role_users["manager"].pk]}, format="json")
    assert r.status_code == 200 and [u["id"] for u in r.json()["incident"]["assignees"]] == [role_users["manager"].pk]
    r = client.post(f"{base}/reassign/", {"user_ids": [role_users["outsider"].pk]}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "user_ids"
    assert client.post(f"{base}/snooze/", {"minutes": 30}, format="json").status_code == 200
    assert client.post(f"{base}/snooze/", {"minutes": 0}, format="json").status_code == 400
    assert client.post(f"{base}/escalate/").status_code == 200
    r = client.post(f"{base}/resolve/")
    assert r.status_code == 200 and r.json()["incident"]["status"] == "resolved"
    kinds = set(TimelineEvent.objects.filter(incident=incident, via="api").values_list("kind", flat=True))
    assert {"acknowledged", "note", "reassigned", "snoozed", "resolved"} <= kinds
    assert TimelineEvent.objects.filter(incident=incident, kind="note", actor=role_users["engineer"]).exists()


@pytest.mark.parametrize("who", ["viewer", "other_team_engineer", "inactive_engineer", "unknown"])
def test_reassign_refuses_all_but_active_engineers_and_managers_of_the_team(incident, role_users, who):
    if who == "viewer":
        target_id = role_users["viewer"].pk
    elif who == "other_team_engineer":
        target_id = MembershipFactory(team=TeamFactory(), role="engineer").user_id
    elif who == "inactive_engineer":
        target_id = MembershipFactory(team=incident.team, role="engineer", user__is_active=False).user_id
    else:
        target_id = 2**40
    before = list(incident.assignees.values_list("pk", flat=True))
    r = api_client(role_users["engineer"]).post(
        f"/api/v1/incidents/{incident.pk}/reassign/", {"user_ids": [role_users["manager"].pk, target_id]}, format="json"
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "user_ids"
    assert list(incident.assignees.values_list("pk", flat=True)) == before
    assert not incident.timeline.filter(kind="reassigned").exists()


def test_create_manual_incident(team, role_users):
    r = api_client(role_users["engineer"]).post(
        "/api/v1/incidents/", {"team": team.pk, "title": "Customers report 502s", "severity": "critical"}, format="json"
    )
    assert r.status_code == 201, r.content
    incident = Incident.objects.get(pk=r.json()["id"])
    assert (incident.source, incident.severity, incident.team) == ("api", "critical", team)
    assert incident.timeline.get(kind="created").actor == role_users["engineer"]


EXPECTED = {
    # action: {role: status}
    "list": dict(staff=200, manager=200, engineer=200, viewer=200, outsider=200, anonymous=401),
    "retrieve": dict(staff=200, manager=200, engineer=200, viewer=200, outsider=404, anonymous=401),
    "create": dict(staff=201, manager=201, engineer=201, viewer=403, outsider=403, anonymous=401),
    "acknowledge": dict(staff=200, manager=200, engineer=200, viewer=403, outsider=404, anonymous=401),
    "resolve": dict(staff=200, manager=200, engineer=200, viewer=403, outsider=404, anonymous=401),
    "escalate": dict(staff=200, manager=200, engineer=200, viewer=403, outsider=404, anonymous=401),
    "reassign": dict(staff=200, manager=200, engineer=200, viewer=403, outsider=404, anonymous=401),
    "note": dict(staff=200, manager=200, engineer=200, viewer=403, outsider=404, anonymous=401),
    "snooze": dict(staff=200, manager=200, engineer=200, viewer=403, outsider=404, anonymous=401),
    "delete": dict(staff=405, manager=405, engineer=405, viewer=405, outsider=405, anonymous=401),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(EXPECTED))
def test_permission_matrix(team, role_users, clients, incident, role, action):
    client = clients[role]
    base = f"/api/v1/incidents/{incident.pk}/"
    bodies = {"reassign": {"user_ids": [role_users["engineer"].pk]}, "note": {"text": "hi"}, "snooze": {"minutes": 5}}
    if action == "list":
        r = client.get("/api/v1/incidents/")
    elif action == "retrieve":
        r = client.get(base)
    elif action == "create":
        r = client.post("/api/v1/incidents/", {"team": team.pk, "title": "x"}, format="json")
    elif action == "delete":
        r = client.delete(base)
    else:
        r = client.post(f"{base}{action}/", bodies.get(action, {}), format="json")
    assert r.status_code == EXPECTED[action][role], (role, action, r.content)
    assert r["Content-Type"].startswith("application/json")
    if action == "list" and role == "outsider":
        assert r.json()["results"] == []
    if r.status_code == 403:
        assert incident.timeline.filter(via="api").count() == 0


def test_users_endpoint_limited_fields_and_scope(team, role_users):
    r = api_client(role_users["viewer"]).get("/api/v1/users/")
    rows = r.json()["results"]
    assert set(rows[0]) == {"id", "name", "email", "time_zone"}
    ids = {row["id"] for row in rows}
    assert role_users["manager"].pk in ids and role_users["outsider"].pk not in ids
    assert role_users["staff"].pk not in ids
    staff_ids = {row["id"] for row in api_client(role_users["staff"]).get("/api/v1/users/?limit=500").json()["results"]}
    assert role_users["outsider"].pk in staff_ids
    assert api_client(role_users["outsider"]).get(f"/api/v1/users/{role_users['manager'].pk}/").status_code == 404


def test_expired_and_revoked_tokens_rejected(role_users):
    from portal.models import ApiToken

    client = api_client(role_users["engineer"])
    assert client.get("/api/v1/incidents/").status_code == 200
    ApiToken.objects.filter(user=role_users["engineer"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = client.get("/api/v1/incidents/")
    assert r.status_code == 401 and r.json()["error"] == "authentication_failed"
