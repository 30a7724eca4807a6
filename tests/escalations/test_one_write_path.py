"""One write path: the REST API and the admin write policies, integrations, maintenance windows and
heartbeats through the same services as the portal, with the same checks and one audit helper."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.urls import reverse

from escalations.intake import services as intake_services
from escalations.models import EscalationPolicy, EscalationStep, Heartbeat, Integration, MaintenanceWindow
from rotations.models import AuditEntry
from tests.escalations.api_helpers import api_client
from tests.factories import (
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    HeartbeatFactory,
    IntegrationFactory,
    MaintenanceWindowFactory,
    RotationFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db
POLICIES = "/api/v1/escalation-policies/"


def _refused_bodies(team, role_users):
    step = {"delay": "00:05:00", "targets": [{"kind": "position", "position": "primary"}]}
    return {
        # The portal's no-endless-paging check: repeat until acknowledged with no delay anywhere.
        "repeat_until_ack_all_zero": (
            "repeat",
            {"repeat": None, "steps": [{"delay": "00:00:00", "targets": [{"kind": "team"}]}]},
        ),
        "unknown_position": (
            "steps",
            {"steps": [{"delay": "00:05:00", "targets": [{"kind": "position", "position": "tertiary"}]}]},
        ),
        "viewer_target": (
            "steps",
            {"steps": [step, {"delay": "00:05:00", "targets": [{"kind": "user", "user": role_users["viewer"].pk}]}]},
        ),
        "step_without_targets": ("steps", {"steps": [{"delay": "00:05:00", "targets": []}]}),
        "blank_name": ("name", {"name": "   ", "steps": [step]}),
    }


REFUSALS = ["repeat_until_ack_all_zero", "unknown_position", "viewer_target", "step_without_targets", "blank_name"]


@pytest.mark.parametrize("case", REFUSALS)
def test_api_refuses_a_policy_the_portal_refuses(team, role_users, case):
    RotationFactory(team=team)  # positions: primary, secondary
    field, body = _refused_bodies(team, role_users)[case]
    r = api_client(role_users["manager"]).post(POLICIES, {"team": team.pk, "name": "P", **body}, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["field"] == field
    assert not EscalationPolicy.objects.exists() and not EscalationStep.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("case", REFUSALS)
def test_api_patch_refused_like_the_portal_leaves_the_policy_as_it_was(team, role_users, case):
    RotationFactory(team=team)
    policy = EscalationPolicyFactory(team=team, name="Kept", repeat=1)
    EscalationTargetFactory(step=EscalationStepFactory(policy=policy, order=0), kind="team", position="")
    field, body = _refused_bodies(team, role_users)[case]
    r = api_client(role_users["manager"]).patch(f"{POLICIES}{policy.pk}/", body, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == field
    policy.refresh_from_db()
    assert (policy.name, policy.repeat) == ("Kept", 1)
    assert [s.targets.get().kind for s in policy.steps.all()] == ["team"]
    assert not AuditEntry.objects.exists()


def test_api_patch_merges_unsent_fields_and_audits_only_the_change(team, role_users):
    policy = EscalationPolicyFactory(
        team=team, repeat=2, ack_timeout=timedelta(minutes=30), skip_empty_steps=True, reassign_on_handover=False
    )
    EscalationTargetFactory(
        step=EscalationStepFactory(policy=policy, order=0, delay=timedelta(minutes=7)),
        kind="user",
        position="",
        user=role_users["engineer"],
    )
    r = api_client(role_users["manager"]).patch(f"{POLICIES}{policy.pk}/", {"description": "new"}, format="json")
    assert r.status_code == 200, r.content
    policy.refresh_from_db()
    assert (policy.description, policy.repeat, policy.ack_timeout) == ("new", 2, timedelta(minutes=30))
    assert (policy.skip_empty_steps, policy.reassign_on_handover) == (True, False)
    step = policy.steps.get()
    assert step.delay == timedelta(minutes=7) and step.targets.get().user == role_users["engineer"]
    entry = AuditEntry.objects.get()
    assert entry.object_type == "escalations.escalationpolicy" and set(entry.changes) == {"description"}


def test_api_policy_delete_audited_once(team, role_users):
    policy = EscalationPolicyFactory(team=team)
    assert api_client(role_users["manager"]).delete(f"{POLICIES}{policy.pk}/").status_code == 204
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_type, entry.object_id) == (
        "delete",
        "escalations.escalationpolicy",
        str(policy.pk),
    )


# --- every entity's API writes: audited once each, one spelling, no secrets ------------------------


ENTITIES = {
    "integrations": (
        "escalations.integration",
        {"name": "Prom", "kind": "alertmanager"},
        {"enabled": False},
        "rotate-key",
    ),
    "maintenance-windows": (
        "escalations.maintenancewindow",
        {"start": "2026-03-02T09:00:00Z", "end": "2026-03-02T11:00:00Z", "reason": "upgrade"},
        {"reason": "longer"},
        None,
    ),
    "heartbeats": (
        "escalations.heartbeat",
        {"name": "backup", "interval": "01:00:00"},
        {"grace": "00:02:00"},
        "rotate-token",
    ),
}


@pytest.mark.parametrize("endpoint", list(ENTITIES))
def test_api_writes_are_audited_once_each_with_one_spelling(team, role_users, endpoint):
    object_type, create, patch, rotate = ENTITIES[endpoint]
    client = api_client(role_users["manager"])
    r = client.post(f"/api/v1/{endpoint}/", {"team": team.pk, **create}, format="json")
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    secret = r.json().get("key") or r.json().get("token")
    assert client.patch(f"/api/v1/{endpoint}/{pk}/", patch, format="json").status_code == 200
    assert client.patch(f"/api/v1/{endpoint}/{pk}/", patch, format="json").status_code == 200  # no change
    expected = ["create", "update"]
    if rotate:
        assert client.post(f"/api/v1/{endpoint}/{pk}/{rotate}/").status_code == 200
        expected.append("update")
    assert client.delete(f"/api/v1/{endpoint}/{pk}/").status_code == 204
    entries = list(AuditEntry.objects.order_by("id"))
    assert [e.action for e in entries] == [*expected, "delete"]
    assert {e.object_type for e in entries} == {object_type}
    assert all(e.actor == role_users["manager"] and e.team == team and e.object_id == str(pk) for e in entries)
    assert set(entries[1].changes) == set(patch)
    if secret:
        assert all(secret not in str(e.changes) for e in entries)


# --- references across teams ---------------------------------------------------------------------


def test_api_refuses_references_to_another_teams_objects(team, role_users):
    client = api_client(role_users["manager"])
    foreign_policy = EscalationPolicyFactory()
    foreign_integration = IntegrationFactory()
    own = IntegrationFactory(team=team)
    cases = [
        (
            "post",
            "/api/v1/integrations/",
            {"team": team.pk, "name": "x", "kind": "generic", "policy": foreign_policy.pk},
            "policy",
        ),
        ("patch", f"/api/v1/integrations/{own.pk}/", {"policy": foreign_policy.pk}, "policy"),
        (
            "post",
            "/api/v1/maintenance-windows/",
            {
                "team": team.pk,
                "start": "2026-03-02T09:00:00Z",
                "end": "2026-03-02T10:00:00Z",
                "integration": foreign_integration.pk,
            },
            "integration",
        ),
        (
            "post",
            "/api/v1/heartbeats/",
            {"team": team.pk, "name": "x", "interval": "00:10:00", "integration": foreign_integration.pk},
            "integration",
        ),
    ]
    for method, url, body, field in cases:
        r = getattr(client, method)(url, body, format="json")
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, (url, r.content)
    assert Integration.objects.filter(team=team).get() == own and own.policy_id is None
    assert not MaintenanceWindow.objects.exists() and not Heartbeat.objects.exists()
    assert not AuditEntry.objects.exists()


def test_services_refuse_references_to_another_teams_objects(team, role_users):
    actor = role_users["manager"]
    foreign = IntegrationFactory()
    with pytest.raises(ValidationError) as exc:
        intake_services.integration_create(
            team=team, name="x", kind="generic", policy=EscalationPolicyFactory(), actor=actor
        )
    assert set(exc.value.message_dict) == {"policy"}
    with pytest.raises(ValidationError) as exc:
        intake_services.maintenance_window_create(
            team=team,
            start=foreign.created_at,
            end=foreign.created_at + timedelta(hours=1),
            integration=foreign,
            actor=actor,
        )
    assert set(exc.value.message_dict) == {"integration"}
    heartbeat = HeartbeatFactory(team=team)
    with pytest.raises(ValidationError) as exc:
        intake_services.heartbeat_update(
            heartbeat=heartbeat,
            actor=actor,
            name=heartbeat.name,
            interval=heartbeat.interval,
            grace=heartbeat.grace,
            enabled=True,
            integration=foreign,
        )
    assert set(exc.value.message_dict) == {"integration"}
    assert not AuditEntry.objects.exists()


def test_window_end_now(team, role_users):
    window = MaintenanceWindowFactory(team=team)
    now = window.start + timedelta(minutes=10)
    intake_services.maintenance_window_end(window=window, actor=role_users["manager"], now=now)
    window.refresh_from_db()
    assert window.end == now
    assert AuditEntry.objects.get().changes["end"][1] == now.isoformat()
    intake_services.maintenance_window_end(window=window, actor=role_users["manager"], now=now + timedelta(hours=1))
    assert AuditEntry.objects.count() == 1  # already over: nothing to do
    future = MaintenanceWindowFactory(team=team, start=now + timedelta(days=1))
    with pytest.raises(ValidationError):
        intake_services.maintenance_window_end(window=future, actor=role_users["manager"], now=now)


# --- the admin goes through the same services ----------------------------------------------------


@pytest.fixture
def admin_client_mfa(client, mfa_user):
    admin = mfa_user(StaffFactory(is_superuser=True))
    client.force_login(admin)
    client.admin = admin
    return client


def test_admin_integration_writes_are_audited_through_the_service(admin_client_mfa, team):
    policy = EscalationPolicyFactory(team=team)
    add = {
        "team": team.pk,
        "name": "Grafana",
        "kind": "generic",
        "enabled": "on",
        "urgency_rule": "severity",
        "policy": policy.pk,
    }
    r = admin_client_mfa.post("/admin/escalations/integration/add/", add)
    assert r.status_code == 302, r.content[:3000]
    integration = Integration.objects.get()
    r = admin_client_mfa.post(
        f"/admin/escalations/integration/{integration.pk}/change/",
        {"name": "Grafana 2", "urgency_rule": "severity", "policy": policy.pk},
    )
    assert r.status_code == 302, r.content[:3000]
    integration.refresh_from_db()
    assert (integration.name, integration.enabled, integration.kind) == ("Grafana 2", False, "generic")
    r = admin_client_mfa.post(f"/admin/escalations/integration/{integration.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302 and not Integration.objects.exists()
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.action, e.object_type) for e in entries] == [
        ("create", "escalations.integration"),
        ("update", "escalations.integration"),
        ("delete", "escalations.integration"),
    ]
    assert all(e.actor == admin_client_mfa.admin and e.team == team for e in entries)
    assert set(entries[1].changes) == {"name", "enabled"}


def test_admin_refuses_what_the_services_refuse(admin_client_mfa, team):
    foreign = IntegrationFactory()
    r = admin_client_mfa.post(
        "/admin/escalations/integration/add/",
        {
            "team": team.pk,
            "name": "x",
            "kind": "generic",
            "urgency_rule": "severity",
            "policy": EscalationPolicyFactory().pk,
        },
    )
    assert r.status_code == 200 and "The policy belongs to another team." in r.content.decode()
    r = admin_client_mfa.post(
        "/admin/escalations/heartbeat/add/",
        {"team": team.pk, "name": "x", "interval": "00:00:10", "grace": "00:01:00", "integration": ""},
    )
    assert r.status_code == 200 and "between 30 seconds and 31 days" in r.content.decode()
    r = admin_client_mfa.post(
        "/admin/escalations/maintenancewindow/add/",
        {
            "team": team.pk,
            "integration": foreign.pk,
            "start_0": "2026-03-02",
            "start_1": "09:00:00",
            "end_0": "2026-03-02",
            "end_1": "10:00:00",
            "reason": "",
        },
    )
    assert r.status_code == 200 and "The integration belongs to another team." in r.content.decode()
    assert Integration.objects.count() == 1 and not Heartbeat.objects.exists()
    assert not MaintenanceWindow.objects.exists() and not AuditEntry.objects.exists()


def test_admin_heartbeat_and_window_writes_are_audited(admin_client_mfa, team):
    r = admin_client_mfa.post(
        "/admin/escalations/heartbeat/add/",
        {"team": team.pk, "name": "nightly", "interval": "01:00:00", "grace": "00:05:00", "enabled": "on"},
    )
    assert r.status_code == 302, r.content[:3000]
    heartbeat = Heartbeat.objects.get()
    r = admin_client_mfa.post(
        "/admin/escalations/maintenancewindow/add/",
        {"team": team.pk, "start_0": "2026-03-02", "start_1": "09:00:00", "end_0": "2026-03-02", "end_1": "10:00:00"},
    )
    assert r.status_code == 302, r.content[:3000]
    window = MaintenanceWindow.objects.get()
    assert window.created_by == admin_client_mfa.admin
    r = admin_client_mfa.post(f"/admin/escalations/heartbeat/{heartbeat.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert list(AuditEntry.objects.order_by("id").values_list("action", "object_type", "actor")) == [
        ("create", "escalations.heartbeat", admin_client_mfa.admin.pk),
        ("create", "escalations.maintenancewindow", admin_client_mfa.admin.pk),
        ("delete", "escalations.heartbeat", admin_client_mfa.admin.pk),
    ]


# --- one spelling, old rows too, and readable on the team page ----------------------------------


def test_old_audit_spellings_are_rewritten_to_the_one_spelling(team):
    migration = importlib.import_module("rotations.migrations.0003_audit_object_type_one_spelling")
    old = ["escalationpolicy", "escalations.EscalationPolicy", "escalations.Integration", "rotations.rotation"]
    for object_type in old:
        AuditEntry.objects.create(team=team, action="update", object_type=object_type, object_id="1", object_repr="x")
    migration.object_types_unify(apps, None)
    assert list(AuditEntry.objects.order_by("id").values_list("object_type", flat=True)) == [
        "escalations.escalationpolicy",
        "escalations.escalationpolicy",
        "escalations.integration",
        "rotations.rotation",
    ]


def test_team_page_names_audited_objects_readably(client, team, role_users):
    api = api_client(role_users["manager"])
    body = {"team": team.pk, "name": "Payments", "steps": [{"delay": "00:05:00", "targets": [{"kind": "team"}]}]}
    assert api.post(POLICIES, body, format="json").status_code == 201
    assert (
        api.post(
            "/api/v1/integrations/", {"team": team.pk, "name": "Prom", "kind": "generic"}, format="json"
        ).status_code
        == 201
    )
    client.force_login(role_users["viewer"])
    page = client.get(reverse("portal:team", args=[team.slug])).content.decode()
    assert "created escalation policy" in page and "created integration" in page
    assert "escalations.escalationpolicy" not in page
