"""The integrations page: list with activity, create, the key and sender examples, test events that
arrive as incidents, rotate, disable, delete; maintenance windows and heartbeats. Bad input is a 400
with the reason, and nothing is written."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from escalations.intake import drain as intake_drain
from escalations.models import Alert, Heartbeat, InboxEvent, Incident, Integration, MaintenanceWindow
from rotations.models import AuditEntry
from tests.factories import (
    EscalationPolicyFactory,
    HeartbeatFactory,
    IntegrationFactory,
    MaintenanceWindowFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

BASE = "https://backstop.example.com"  # PUBLIC_BASE_URL in the test settings


def _url(name, team, *args):
    return reverse(f"portal:{name}", args=[team.slug, *args])


def _text(response) -> str:
    return response.content.decode()


# ------------------------------------------------------------------------------------------ list


def test_team_page_links_the_integrations_page_and_never_the_admin(login, team, role_users):
    for role in ("manager", "viewer"):
        body = _text(login(role_users[role]).get(reverse("portal:team", args=[team.slug])))
        assert _url("integrations", team) in body
        assert "admin" not in body.lower().replace("/admin/", "")  # the staff nav may link the admin itself
    assert _url("integration_create", team) in _text(
        login(role_users["manager"]).get(reverse("portal:team", args=[team.slug]))
    )


def test_viewers_read_the_list_without_keys_managers_see_keys(login, team, role_users):
    integration = IntegrationFactory(team=team, name="Prometheus", kind=Integration.Kind.ALERTMANAGER)
    HeartbeatFactory(team=team, name="Backups")
    viewer = _text(login(role_users["viewer"]).get(_url("integrations", team)))
    assert "Prometheus" in viewer and "Backups" in viewer
    assert integration.key not in viewer
    assert _url("integration", team, integration.pk) not in viewer
    manager = _text(login(role_users["manager"]).get(_url("integrations", team)))
    assert _url("integration", team, integration.pk) in manager
    assert f"{BASE}/integrations/heartbeat/" in manager  # ping URLs for managers


def test_list_shows_last_event_and_counts_in_a_fixed_number_of_queries(login, team, role_users, incident):
    now = timezone.now()
    integrations = [IntegrationFactory(team=team, name=f"Sender {n}") for n in range(3)]
    for n, integration in enumerate(integrations):
        for hours in range(n + 1):
            Alert.objects.create(
                integration=integration,
                incident=incident,
                received_at=now - timedelta(hours=hours * 30),
                action="trigger",
                status="firing",
            )
    client = login(role_users["manager"])
    client.get(_url("integrations", team))  # warm the session and the role cache
    with CaptureQueriesContext(connection) as few:
        body = _text(client.get(_url("integrations", team)))
    assert body.count(reverse("portal:incident", args=[incident.pk])) == 3
    # 24 h / 7 d: sender 0 has one alert now, sender 2 has alerts at 0, 30 and 60 hours ago
    assert "1 / 1" in body and "1 / 3" in body
    for n in range(3, 13):
        IntegrationFactory(team=team, name=f"Sender {n}")
    with CaptureQueriesContext(connection) as many:
        client.get(_url("integrations", team))
    assert len(many) == len(few)


# ------------------------------------------------------------------------------------ create


def test_manager_creates_an_alertmanager_integration_and_gets_the_receiver_block(login, team, role_users, policy):
    client = login(role_users["manager"])
    response = client.post(
        _url("integration_create", team),
        {"name": "Prometheus", "kind": "alertmanager", "urgency_rule": "always_high", "policy": policy.pk},
    )
    integration = Integration.objects.get(team=team, name="Prometheus")
    assert response.status_code == 302 and response["Location"] == _url("integration", team, integration.pk)
    assert (integration.kind, integration.urgency_rule, integration.policy) == ("alertmanager", "always_high", policy)
    assert AuditEntry.objects.filter(object_type="escalations.integration", object_id=str(integration.pk)).exists()
    body = _text(client.get(response["Location"]))
    assert f"url: {BASE}/integrations/alertmanager/{integration.key}/" in body
    assert "webhook_configs:" in body and "send_resolved: true" in body


def test_pagerduty_integration_page_has_curl_and_pdpyras(login, team, role_users):
    integration = IntegrationFactory(team=team, kind=Integration.Kind.PAGERDUTY)
    body = _text(login(role_users["staff"]).get(_url("integration", team, integration.pk)))
    assert f"curl -sS -X POST {BASE}/integrations/pagerduty/v2/enqueue" in body
    assert f"EventsAPISession(&quot;{integration.key}&quot;)" in body
    assert f"session.url = &quot;{BASE}/integrations/pagerduty&quot;" in body


@pytest.mark.parametrize(
    "data,field_error",
    [
        ({"name": "  ", "kind": "generic", "urgency_rule": "severity"}, "This field is required."),
        ({"name": "X", "kind": "email", "urgency_rule": "severity"}, "Select a valid choice"),
        ({"name": "X", "kind": "generic", "urgency_rule": "sometimes"}, "Select a valid choice"),
        ({"name": "X", "kind": "generic", "urgency_rule": "severity", "policy": "other"}, "another team"),
    ],
)
def test_bad_integration_input_is_a_400_and_writes_nothing(login, team, role_users, data, field_error):
    if data.get("policy") == "other":
        data = {**data, "policy": EscalationPolicyFactory(team=TeamFactory()).pk}
    response = login(role_users["manager"]).post(_url("integration_create", team), data)
    assert response.status_code == 400
    assert field_error in _text(response)
    assert not Integration.objects.filter(team=team).exists()
    assert not AuditEntry.objects.filter(object_type="escalations.integration").exists()


def test_duplicate_name_is_refused(login, team, role_users):
    IntegrationFactory(team=team, name="Grafana")
    response = login(role_users["manager"]).post(
        _url("integration_create", team), {"name": "Grafana", "kind": "generic", "urgency_rule": "severity"}
    )
    assert response.status_code == 400 and "already has an integration called" in _text(response)
    assert Integration.objects.filter(team=team).count() == 1


# ----------------------------------------------------------------------------------- test event


@pytest.mark.parametrize("kind", ["pagerduty", "alertmanager", "generic"])
def test_test_event_goes_through_the_inbox_and_arrives_as_an_incident(login, team, role_users, policy, kind):
    integration = IntegrationFactory(team=team, kind=kind)
    client = login(role_users["manager"])
    response = client.post(_url("integration_probe", team, integration.pk))
    assert response.status_code == 302
    probe_url = response["Location"]
    assert probe_url.startswith(_url("integration", team, integration.pk) + "?probe=")
    event = InboxEvent.objects.get(integration=integration)  # stored as the sender's event would be
    assert event.kind == kind and event.processed_at is None
    token = probe_url.split("probe=")[1]
    status_url = _url("integration_probe_status", team, integration.pk) + f"?probe={token}"
    waiting = _text(client.get(status_url))
    assert "Waiting for the test event" in waiting and 'hx-trigger="every 2s"' in waiting
    assert intake_drain.inbox_drain(now=timezone.now()) == 1
    incident = Incident.objects.get(team=team, title__contains="Test event from Backstop")
    arrived = _text(client.get(status_url))
    assert "hx-trigger" not in arrived  # polling stops
    assert reverse("portal:incident", args=[incident.pk]) in arrived
    assert reverse("portal:incident", args=[incident.pk]) in _text(client.get(_url("integrations", team)))


def test_test_event_for_a_heartbeat_or_disabled_integration_is_refused(login, team, role_users):
    client = login(role_users["manager"])
    for integration in (
        IntegrationFactory(team=team, kind=Integration.Kind.HEARTBEAT),
        IntegrationFactory(team=team, kind=Integration.Kind.GENERIC, enabled=False),
    ):
        response = client.post(_url("integration_probe", team, integration.pk))
        assert response.status_code == 400
        assert "take no events" in _text(response) or "disabled" in _text(response)
    assert not InboxEvent.objects.exists()


# ------------------------------------------------------------------------- rotate, disable, delete


def test_key_rotation_needs_confirmation(login, team, role_users):
    integration = IntegrationFactory(team=team)
    old = integration.key
    client = login(role_users["manager"])
    response = client.post(_url("integration_key_rotate", team, integration.pk))
    assert response.status_code == 400 and "Tick the box" in _text(response)
    integration.refresh_from_db()
    assert integration.key == old
    assert client.post(_url("integration_key_rotate", team, integration.pk), {"confirm": "on"}).status_code == 302
    integration.refresh_from_db()
    assert integration.key != old
    assert AuditEntry.objects.filter(object_id=str(integration.pk), changes__has_key="key").exists()


def test_disable_and_enable(login, team, role_users):
    integration = IntegrationFactory(team=team)
    client = login(role_users["manager"])
    client.post(_url("integration_enabled", team, integration.pk), {"enabled": "0"})
    integration.refresh_from_db()
    assert not integration.enabled
    response = client.post(_url("integration_enabled", team, integration.pk), {"enabled": "maybe"})
    assert response.status_code == 400
    integration.refresh_from_db()
    assert not integration.enabled
    client.post(_url("integration_enabled", team, integration.pk), {"enabled": "1"})
    integration.refresh_from_db()
    assert integration.enabled


def test_delete_needs_confirmation(login, team, role_users):
    integration = IntegrationFactory(team=team)
    client = login(role_users["manager"])
    assert client.post(_url("integration_delete", team, integration.pk)).status_code == 400
    assert Integration.objects.filter(pk=integration.pk).exists()
    response = client.post(_url("integration_delete", team, integration.pk), {"confirm": "on"})
    assert response.status_code == 302 and not Integration.objects.filter(pk=integration.pk).exists()


def test_another_teams_integration_is_not_found_here(login, team, role_users):
    elsewhere = IntegrationFactory(team=TeamFactory())
    client = login(role_users["manager"])
    assert client.get(_url("integration", team, elsewhere.pk)).status_code == 404
    assert client.post(_url("integration_delete", team, elsewhere.pk), {"confirm": "on"}).status_code == 404
    assert Integration.objects.filter(pk=elsewhere.pk).exists()


# ------------------------------------------------------------------------------ maintenance windows


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_manager_creates_a_scoped_window_ends_it_and_deletes_another(login, team, role_users):
    integration = IntegrationFactory(team=team, name="Prometheus")
    now = timezone.now()
    client = login(role_users["manager"])
    response = client.post(
        _url("window_create", team),
        {
            "start": _local(now - timedelta(minutes=5)),
            "end": _local(now + timedelta(hours=2)),
            "integration": integration.pk,
            "reason": "DB upgrade",
        },
    )
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get(team=team)
    assert window.integration == integration and window.reason == "DB upgrade"
    body = _text(client.get(_url("integrations", team)))
    assert "DB upgrade" in body and _url("window_end", team, window.pk) in body
    assert client.post(_url("window_end", team, window.pk)).status_code == 302
    window.refresh_from_db()
    assert window.end <= timezone.now()
    upcoming = MaintenanceWindowFactory(team=team, start=now + timedelta(days=1))
    response = client.post(_url("window_end", team, upcoming.pk))
    assert response.status_code == 400 and "delete it instead" in _text(response)
    assert client.post(_url("window_delete", team, upcoming.pk)).status_code == 302
    assert not MaintenanceWindow.objects.filter(pk=upcoming.pk).exists()


@pytest.mark.parametrize(
    "case,error",
    [
        ("end_before_start", "The end must be after the start."),
        ("other_team_integration", "The integration belongs to another team."),
        ("no_start", "This field is required."),
        ("junk_integration", "Select a valid choice"),
    ],
)
def test_bad_window_input_is_a_400_and_writes_nothing(login, team, role_users, case, error):
    now = timezone.now()
    data = {"start": _local(now + timedelta(hours=1)), "end": _local(now + timedelta(hours=2)), "reason": "x"}
    if case == "end_before_start":
        data["end"] = _local(now)
    elif case == "other_team_integration":
        data["integration"] = IntegrationFactory(team=TeamFactory()).pk
    elif case == "no_start":
        del data["start"]
    else:
        data["integration"] = "abc"
    response = login(role_users["manager"]).post(_url("window_create", team), data)
    assert response.status_code == 400
    assert error in _text(response)
    assert not MaintenanceWindow.objects.exists()


# -------------------------------------------------------------------------------------- heartbeats


def test_heartbeat_create_states_rotate_and_delete(login, team, role_users):
    client = login(role_users["manager"])
    response = client.post(
        _url("heartbeat_create", team), {"name": "Nightly backup", "interval_minutes": "60", "grace_minutes": "10"}
    )
    assert response.status_code == 302
    heartbeat = Heartbeat.objects.get(team=team, name="Nightly backup")
    assert (heartbeat.interval, heartbeat.grace) == (timedelta(hours=1), timedelta(minutes=10))
    now = timezone.now()
    HeartbeatFactory(team=team, name="Late job", last_ping_at=now - timedelta(minutes=11))  # 10 + 2 grace
    HeartbeatFactory(team=team, name="Dead job", last_ping_at=now - timedelta(minutes=30))
    body = _text(client.get(_url("integrations", team)))
    assert ">up<" in body and ">late<" in body and ">down<" in body
    assert f"{BASE}/integrations/heartbeat/{heartbeat.token}/" in body
    old = heartbeat.token
    assert client.post(_url("heartbeat_token_rotate", team, heartbeat.pk)).status_code == 400
    heartbeat.refresh_from_db()
    assert heartbeat.token == old
    client.post(_url("heartbeat_token_rotate", team, heartbeat.pk), {"confirm": "on"})
    heartbeat.refresh_from_db()
    assert heartbeat.token != old
    assert client.post(_url("heartbeat_delete", team, heartbeat.pk)).status_code == 400
    assert client.post(_url("heartbeat_delete", team, heartbeat.pk), {"confirm": "on"}).status_code == 302
    assert not Heartbeat.objects.filter(pk=heartbeat.pk).exists()


@pytest.mark.parametrize(
    "data,error",
    [
        ({"name": "", "interval_minutes": "5", "grace_minutes": "1"}, "This field is required."),
        ({"name": "x", "interval_minutes": "0", "grace_minutes": "1"}, "greater than or equal to 1"),
        ({"name": "x", "interval_minutes": "99999", "grace_minutes": "1"}, "less than or equal to"),
        ({"name": "x", "interval_minutes": "5", "grace_minutes": "-1"}, "greater than or equal to 0"),
        ({"name": "x", "interval_minutes": "5", "grace_minutes": "1", "integration": "other"}, "another team"),
    ],
)
def test_bad_heartbeat_input_is_a_400_and_writes_nothing(login, team, role_users, data, error):
    if data.get("integration") == "other":
        data = {**data, "integration": IntegrationFactory(team=TeamFactory()).pk}
    response = login(role_users["manager"]).post(_url("heartbeat_create", team), data)
    assert response.status_code == 400
    assert error in _text(response)
    assert not Heartbeat.objects.exists()
