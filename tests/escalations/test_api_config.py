"""Policies, integrations, maintenance windows and heartbeats over the REST API; schema validity."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from escalations.models import EscalationPolicy, Integration
from rotations.models import AuditEntry
from tests.escalations.api_helpers import api_client
from tests.factories import EscalationPolicyFactory, HeartbeatFactory, IntegrationFactory, TeamFactory

pytestmark = pytest.mark.django_db
ROLES = ["staff", "manager", "engineer", "viewer", "outsider", "anonymous"]


def client_for(role_users, role):
    return api_client(None if role == "anonymous" else role_users[role])


def policy_body(team, engineer):
    return {
        "team": team.pk,
        "name": "Payments default",
        "repeat": 1,
        "steps": [
            {"delay": "00:05:00", "targets": [{"kind": "position", "position": "primary"}]},
            {"delay": "00:15:00", "targets": [{"kind": "user", "user": engineer.pk}, {"kind": "managers"}]},
        ],
    }


def test_policy_crud_nested_and_audited(team, role_users):
    client = api_client(role_users["manager"])
    r = client.post("/api/v1/escalation-policies/", policy_body(team, role_users["engineer"]), format="json")
    assert r.status_code == 201, r.content
    policy = EscalationPolicy.objects.get()
    assert [(s.order, s.delay.total_seconds(), s.targets.count()) for s in policy.steps.all()] == [
        (0, 300, 1),
        (1, 900, 2),
    ]
    r = client.patch(
        f"/api/v1/escalation-policies/{policy.pk}/",
        {"steps": [{"delay": "00:01:00", "targets": [{"kind": "team"}]}]},
        format="json",
    )
    assert r.status_code == 200 and len(r.json()["steps"]) == 1
    assert client.delete(f"/api/v1/escalation-policies/{policy.pk}/").status_code == 204
    assert list(AuditEntry.objects.order_by("id").values_list("action", "object_type")) == [
        ("create", "escalations.escalationpolicy"),
        ("update", "escalations.escalationpolicy"),
        ("delete", "escalations.escalationpolicy"),
    ]
    assert AuditEntry.objects.filter(actor=role_users["manager"], team=team).count() == 3


@pytest.mark.parametrize(
    "steps",
    [
        [{"delay": "00:05:00", "targets": [{"kind": "position"}]}],
        [{"delay": "-00:05:00", "targets": []}],
        [{"delay": "00:05:00", "targets": [{"kind": "wizard"}]}],
        "not a list",
    ],
)
def test_policy_validation(team, role_users, steps):
    r = api_client(role_users["manager"]).post(
        "/api/v1/escalation-policies/", {"team": team.pk, "name": "p", "steps": steps}, format="json"
    )
    assert r.status_code == 400 and r.json()["errors"]
    assert EscalationPolicy.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_policy_user_target_must_be_team_member(team, role_users):
    body = policy_body(team, role_users["outsider"])
    r = api_client(role_users["manager"]).post("/api/v1/escalation-policies/", body, format="json")
    assert r.status_code == 400


WRITE = dict(staff=201, manager=201, engineer=403, viewer=403, outsider=403, anonymous=401)
READ = dict(staff=200, manager=200, engineer=200, viewer=200, outsider=404, anonymous=401)
CHANGE = dict(staff=200, manager=200, engineer=403, viewer=403, outsider=404, anonymous=401)
DELETE = dict(staff=204, manager=204, engineer=403, viewer=403, outsider=404, anonymous=401)


def _bodies(team):
    return {
        "escalation-policies": ({"team": team.pk, "name": "New"}, {"description": "d"}),
        "integrations": ({"team": team.pk, "name": "New", "kind": "generic"}, {"enabled": False}),
        "maintenance-windows": (
            {"team": team.pk, "start": "2026-03-02T09:00:00Z", "end": "2026-03-02T11:00:00Z", "reason": "upgrade"},
            {"reason": "longer"},
        ),
        "heartbeats": ({"team": team.pk, "name": "New", "interval": "00:10:00"}, {"grace": "00:02:00"}),
    }


def _existing(endpoint, team):
    if endpoint == "escalation-policies":
        return EscalationPolicyFactory(team=team)
    if endpoint == "integrations":
        return IntegrationFactory(team=team)
    if endpoint == "heartbeats":
        return HeartbeatFactory(team=team)
    from tests.factories import MaintenanceWindowFactory

    return MaintenanceWindowFactory(team=team)


@pytest.mark.parametrize("endpoint", ["escalation-policies", "integrations", "maintenance-windows", "heartbeats"])
@pytest.mark.parametrize("role", ROLES)
def test_config_permission_matrix(team, role_users, endpoint, role):
    client = client_for(role_users, role)
    create, patch = _bodies(team)[endpoint]
    obj = _existing(endpoint, team)
    url = f"/api/v1/{endpoint}/"
    assert client.post(url, create, format="json").status_code == WRITE[role]
    listing = client.get(url)
    assert listing.status_code == (401 if role == "anonymous" else 200)
    if role == "outsider":
        assert listing.json()["results"] == []
    assert client.get(f"{url}{obj.pk}/").status_code == READ[role]
    assert client.patch(f"{url}{obj.pk}/", patch, format="json").status_code == CHANGE[role]
    assert client.delete(f"{url}{obj.pk}/").status_code == DELETE[role]


def test_manager_cannot_create_for_another_team(role_users):
    other = TeamFactory()
    r = api_client(role_users["manager"]).post(
        "/api/v1/integrations/", {"team": other.pk, "name": "x", "kind": "generic"}, format="json"
    )
    assert r.status_code == 403 and Integration.objects.count() == 0


def test_integration_key_shown_on_create_and_rotate_only(team, role_users):
    client = api_client(role_users["manager"])
    r = client.post(
        "/api/v1/integrations/", {"team": team.pk, "name": "Prometheus", "kind": "alertmanager"}, format="json"
    )
    assert r.status_code == 201
    key = r.json()["key"]
    assert len(key) == 32 and Integration.objects.get().key == key
    assert r.json()["endpoint"] == "/integrations/alertmanager/%3Ckey%3E/"
    pk = r.json()["id"]
    assert "key" not in client.get(f"/api/v1/integrations/{pk}/").json()
    assert all("key" not in row for row in client.get("/api/v1/integrations/").json()["results"])
    r = client.post(f"/api/v1/integrations/{pk}/rotate-key/")
    assert r.status_code == 200 and r.json()["key"] != key and len(r.json()["key"]) == 32
    assert Integration.objects.get().key == r.json()["key"]
    assert api_client(role_users["engineer"]).post(f"/api/v1/integrations/{pk}/rotate-key/").status_code == 403
    assert api_client(role_users["viewer"]).post(f"/api/v1/integrations/{pk}/rotate-key/").status_code == 403


def test_integration_policy_of_other_team_rejected(team, role_users):
    foreign = EscalationPolicyFactory()
    r = api_client(role_users["staff"]).post(
        "/api/v1/integrations/",
        {"team": team.pk, "name": "x", "kind": "pagerduty", "policy": foreign.pk},
        format="json",
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "policy"


def test_maintenance_window_end_after_start(team, role_users):
    r = api_client(role_users["manager"]).post(
        "/api/v1/maintenance-windows/",
        {"team": team.pk, "start": "2026-03-02T11:00:00Z", "end": "2026-03-02T09:00:00Z"},
        format="json",
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "end"


def test_heartbeat_token_on_create_and_rotate(team, role_users):
    client = api_client(role_users["manager"])
    r = client.post("/api/v1/heartbeats/", {"team": team.pk, "name": "backup", "interval": "01:00:00"}, format="json")
    assert r.status_code == 201 and r.json()["ping_url"].endswith(f"/{r.json()['token']}/")
    pk = r.json()["id"]
    assert "token" not in client.get(f"/api/v1/heartbeats/{pk}/").json()
    assert client.post(f"/api/v1/heartbeats/{pk}/rotate-token/").json()["token"] != r.json()["token"]


@pytest.mark.parametrize("body", [b"{", b"[]", b'"x"', b"null"])
@pytest.mark.parametrize(
    "endpoint", ["incidents", "escalation-policies", "integrations", "maintenance-windows", "heartbeats", "tokens"]
)
def test_garbage_bodies_are_400_json(role_users, mfa_user, endpoint, body):
    if endpoint == "tokens":  # minted only from an interactive session (for staff, one that passed MFA)
        client = APIClient()
        client.force_login(mfa_user(role_users["staff"]))
    else:
        client = api_client(role_users["staff"])
    r = client.post(f"/api/v1/{endpoint}/", body, content_type="application/json")
    assert r.status_code == 400 and r["Content-Type"].startswith("application/json")


def test_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    for path in (
        "/api/v1/incidents/{id}/acknowledge/",
        "/api/v1/integrations/{id}/rotate-key/",
        "/api/v1/tokens/",
        "/api/v1/heartbeats/{id}/rotate-token/",
    ):
        assert path in text


def test_schema_endpoint_serves(client):
    assert client.get("/api/schema/").status_code == 200
