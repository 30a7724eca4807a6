"""The Opsgenie-compatible Alert API (/integrations/opsgenie/): the official `opsgenie-sdk` and a real
Prometheus Alertmanager (`opsgenie_configs`) against a live server, Alertmanager's bodies replayed, and
the refusals (nothing stored unless 202)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import opsgenie_sdk
import pytest
from django.core.cache import cache

from config.wsgi_routing import LeanWSGIHandler
from escalations.api.intake import IntegrationSerializer
from escalations.incidents import services
from escalations.intake import kick
from escalations.intake.wsgi import PagerDutyWSGI
from escalations.models import Alert, InboxEvent, Incident, Integration, TimelineEvent
from tests.escalations.inbox_helpers import drain
from tests.escalations.test_intake_wsgi import call
from tests.factories import IntegrationFactory, TeamFactory

BASE = "/integrations/opsgenie"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def integration(team):
    return IntegrationFactory(team=team, kind=Integration.Kind.OPSGENIE)


def _post(client, path, body, key, **params):
    query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    extra = {"HTTP_AUTHORIZATION": f"GenieKey {key}"} if key else {}
    return client.post(f"{BASE}{path}{query}", data=data, content_type="application/json", **extra)


def _status(client, request_id, key):
    return client.get(f"{BASE}/v2/alerts/requests/{request_id}", HTTP_AUTHORIZATION=f"GenieKey {key}")


# --- the official SDK against a live server --------------------------------------------------------


def _sdk(live_server, key: str) -> opsgenie_sdk.AlertApi:
    conf = opsgenie_sdk.Configuration()
    conf.api_key["Authorization"] = key
    conf.api_key_prefix["Authorization"] = "GenieKey"
    conf.host = f"{live_server.url}{BASE}"
    conf.retry_enabled = False  # a refusal must show here, not be retried for a minute
    return opsgenie_sdk.AlertApi(api_client=opsgenie_sdk.ApiClient(configuration=conf))


@pytest.mark.django_db(transaction=True)
def test_opsgenie_sdk_creates_acknowledges_notes_and_closes(live_server):
    integration = IntegrationFactory(team=TeamFactory(), kind=Integration.Kind.OPSGENIE)
    api = _sdk(live_server, integration.key)

    created = api.create_alert(
        create_alert_payload=opsgenie_sdk.CreateAlertPayload(
            message="Disk full on db-1",
            alias="disk-db-1",
            description="/var is at 99%",
            priority="P1",
            tags=["db", "disk"],
            details={"host": "db-1"},
            entity="db-1",
            source="nagios",
            note="paged from the SDK",
            responders=[{"type": "team", "name": "ops"}],
        )
    )
    assert created.result == "Request will be processed"
    assert isinstance(created.took, float)
    # Stored before the answer; applied by the drain, not by the request.
    row = InboxEvent.objects.get(request_id=created.request_id)
    assert row.processed_at is None and row.dedup_key == "disk-db-1"
    assert not Incident.objects.exists()
    with pytest.raises(opsgenie_sdk.ApiException) as pending:
        api.get_request_status(request_id=created.request_id)
    assert pending.value.status == 404

    drain()
    status = api.get_request_status(request_id=created.request_id).data
    incident = Incident.objects.get()
    assert (status.is_success, status.action, status.alert_id, status.alias) == (
        True,
        "Create",
        str(incident.pk),
        "disk-db-1",
    )
    assert incident.title == "Disk full on db-1" and incident.urgency == Incident.Urgency.HIGH
    assert "/var is at 99%" in incident.details and "host: db-1" in incident.details

    acked = api.acknowledge_alert(
        identifier="disk-db-1",
        identifier_type="alias",
        acknowledge_alert_payload=opsgenie_sdk.AcknowledgeAlertPayload(user="ann", source="sdk", note="looking"),
    )
    noted = api.add_note(
        identifier=str(incident.pk),
        add_note_to_alert_payload=opsgenie_sdk.AddNoteToAlertPayload(user="ann", note="freed 20 GB"),
    )
    drain()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert api.get_request_status(request_id=acked.request_id).data.action == "Acknowledge"
    assert api.get_request_status(request_id=noted.request_id).data.status == "Added note"

    closed = api.close_alert(
        identifier="disk-db-1",
        identifier_type="alias",
        close_alert_payload=opsgenie_sdk.CloseAlertPayload(user="ann", source="sdk", note="fixed"),
    )
    drain()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    closing = api.get_request_status(request_id=closed.request_id).data
    assert (closing.is_success, closing.action, closing.status) == (True, "Close", "Closed alert")
    notes = list(incident.timeline.filter(kind=TimelineEvent.Kind.NOTE).values_list("message", flat=True))
    assert notes == ["paged from the SDK (nagios)", "looking (ann via sdk)", "freed 20 GB (ann)", "fixed (ann via sdk)"]


@pytest.mark.django_db(transaction=True)
def test_opsgenie_sdk_with_a_wrong_key_is_refused_and_nothing_is_stored(live_server):
    IntegrationFactory(team=TeamFactory(), kind=Integration.Kind.OPSGENIE)
    api = _sdk(live_server, "0" * 32)
    with pytest.raises(opsgenie_sdk.exceptions.AuthenticationException) as refused:
        api.create_alert(create_alert_payload=opsgenie_sdk.CreateAlertPayload(message="x"))
    assert refused.value.status == 401
    assert not InboxEvent.objects.exists()


# --- Alertmanager's opsgenie_configs -------------------------------------------------------------

# What Alertmanager 0.25 (Debian's prometheus-alertmanager, notify/opsgenie) sent for `opsgenie_configs:
# [{priority: P2, send_resolved: true}]`, recorded from test_real_alertmanager_creates_and_closes below:
# the alias is the SHA-256 of the group key, the close goes to v2/alerts/<alias>/close?identifierType=alias.
AM_ALIAS = "17c4e445d234645c9e547ff6d32a864af0ebdadcd1902771c24c8d366637ff41"
AM_SOURCE = "http://vm:47555/#/alerts?receiver=opsgenie"
AM_CREATE = {
    "alias": AM_ALIAS,
    "message": "[FIRING:1] DiskFull (db-1 critical)",
    "description": "Disk full on db-1\nAlerts Firing:\nLabels:\n - alertname = DiskFull\n - instance = db-1\n"
    " - severity = critical\nAnnotations:\n - summary = Disk full on db-1\nSource: \n\n",
    "details": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
    "source": AM_SOURCE,
    "priority": "P2",
}
AM_CLOSE = {"source": AM_SOURCE}


def test_alertmanager_payloads_replayed_create_and_close(client, integration):
    created = _post(client, "/v2/alerts", AM_CREATE, integration.key)
    assert created.status_code == 202, created.content
    assert created.json()["result"] == "Request will be processed"
    drain()
    incident = Incident.objects.get(team=integration.team)
    assert incident.dedup_key == AM_ALIAS and incident.urgency == Incident.Urgency.HIGH

    repeat = _post(client, "/v2/alerts", AM_CREATE, integration.key)  # repeat_interval: same alias
    closed = _post(client, f"/v2/alerts/{AM_ALIAS}/close", AM_CLOSE, integration.key, identifierType="alias")
    assert (repeat.status_code, closed.status_code) == (202, 202)
    drain()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.alert_count == 2
    assert Incident.objects.count() == 1
    status = _status(client, closed.json()["requestId"], integration.key).json()["data"]
    assert (status["success"], status["action"], status["alertId"]) == (True, "Close", str(incident.pk))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is not installed")
@pytest.mark.django_db(transaction=True)
def test_real_alertmanager_creates_and_closes(live_server, tmp_path: Path):
    integration = IntegrationFactory(team=TeamFactory(), kind=Integration.Kind.OPSGENIE)
    port = _free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: opsgenie\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n- name: opsgenie\n  opsgenie_configs:\n"
        f"  - api_key: {integration.key}\n    api_url: {live_server.url}{BASE}/\n"
        "    priority: P2\n    send_resolved: true\n"
    )
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v2/alerts"

        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1).status == 200
            except OSError:
                return False

        def send(ends_at: datetime | None) -> None:
            alert = {
                "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
                "annotations": {"summary": "Disk full on db-1"},
                "startsAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            }
            if ends_at is not None:
                alert["endsAt"] = ends_at.isoformat()
            request = urllib.request.Request(
                api, data=json.dumps([alert]).encode(), headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=5)

        assert _wait(ready), "Alertmanager did not start"
        send(None)
        assert _wait(lambda: InboxEvent.objects.filter(action="trigger").exists()), "no create arrived"
        drain()
        incident = Incident.objects.get(team=integration.team)
        assert incident.status == Incident.Status.TRIGGERED and incident.urgency == Incident.Urgency.HIGH
        create = InboxEvent.objects.get(action="trigger").payload["alert"]
        assert create["alias"] == incident.dedup_key and len(create["alias"]) == 64  # sha256 of the group key

        send(datetime.now(UTC) - timedelta(seconds=1))
        assert _wait(lambda: InboxEvent.objects.filter(action="resolve").exists()), "no close arrived"
        close = InboxEvent.objects.get(action="resolve")
        assert (close.payload["identifier"], close.payload["identifierType"]) == (create["alias"], "alias")
        drain()
        incident.refresh_from_db()
        assert incident.status == Incident.Status.RESOLVED
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- priorities, identifiers, statuses -----------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "urgency"),
    [("P1", "high"), ("P2", "high"), (None, "low"), ("P3", "low"), ("P4", "low"), ("P5", "low")],
)
def test_priority_decides_urgency_under_the_severity_rule(client, integration, priority, urgency):
    body = {"message": "m", "alias": "a"} | ({"priority": priority} if priority else {})
    assert _post(client, "/v2/alerts", body, integration.key).status_code == 202
    drain()
    assert Incident.objects.get().urgency == urgency


def test_fixed_urgency_rule_overrides_priority(client, team):
    integration = IntegrationFactory(team=team, kind=Integration.Kind.OPSGENIE, urgency_rule="always_high")
    _post(client, "/v2/alerts", {"message": "m", "priority": "P5"}, integration.key)
    drain()
    assert Incident.objects.get().urgency == "high"


def test_close_by_id_and_unknown_identifier(client, integration):
    _post(client, "/v2/alerts", {"message": "m"}, integration.key)  # no alias: a generated dedup key
    drain()
    incident = Incident.objects.get()
    missing = _post(client, "/v2/alerts/no-such-alias/close", {}, integration.key, identifierType="alias")
    by_id = _post(client, f"/v2/alerts/{incident.pk}/close", b"", integration.key)
    drain()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    answer = _status(client, missing.json()["requestId"], integration.key).json()["data"]
    assert (answer["success"], answer["status"]) == (False, "Alert does not exist")
    assert _status(client, by_id.json()["requestId"], integration.key).json()["data"]["alias"] == incident.dedup_key
    assert Alert.objects.filter(status=Alert.Status.IGNORED).count() == 1


def test_an_id_of_another_team_is_not_used(client, integration):
    other = IntegrationFactory(team=TeamFactory(), kind=Integration.Kind.OPSGENIE)
    _post(client, "/v2/alerts", {"message": "theirs", "alias": "x"}, other.key)
    drain()
    theirs = Incident.objects.get()
    response = _post(client, f"/v2/alerts/{theirs.pk}/acknowledge", {}, integration.key)
    drain()
    theirs.refresh_from_db()
    assert theirs.status == Incident.Status.TRIGGERED
    assert _status(client, response.json()["requestId"], integration.key).json()["data"]["success"] is False
    # And another integration's key cannot read this request's status.
    assert _status(client, response.json()["requestId"], other.key).status_code == 404


def test_long_alias_is_hashed_to_a_dedup_key(client, integration):
    alias = "a" * 400
    _post(client, "/v2/alerts", {"message": "m", "alias": alias}, integration.key)
    _post(client, f"/v2/alerts/{alias}/close", {}, integration.key, identifierType="alias")
    drain()
    incident = Incident.objects.get()
    assert incident.dedup_key.startswith("opsgenie:") and incident.status == Incident.Status.RESOLVED


def test_long_message_is_cut_and_kept_in_the_details(client, integration):
    _post(client, "/v2/alerts", {"message": "x" * 200}, integration.key)
    drain()
    incident = Incident.objects.get()
    assert incident.title == "x" * 130 and incident.details.startswith("x" * 200)


# --- refusals: Opsgenie's shapes, never a 500, nothing stored ------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "params"),
    [
        ("/v2/alerts", {}, {}),
        ("/v2/alerts", {"message": "   "}, {}),
        ("/v2/alerts", {"message": 5}, {}),
        ("/v2/alerts", {"message": "m", "priority": "P9"}, {}),
        ("/v2/alerts", {"message": "m", "alias": "a" * 513}, {}),
        ("/v2/alerts", {"message": "m", "tags": "db"}, {}),
        ("/v2/alerts", {"message": "m", "details": ["x"]}, {}),
        ("/v2/alerts", {"message": "m\u0000"}, {}),
        ("/v2/alerts", b"{not json", {}),
        ("/v2/alerts", b"[1, 2]", {}),
        ("/v2/alerts", b"", {}),
        ("/v2/alerts/x/close", {}, {"identifierType": "name"}),
        ("/v2/alerts/x/close", b"[]", {}),
        ("/v2/alerts/x/close", {"note": 3}, {}),
        ("/v2/alerts/x/notes", {}, {}),
    ],
)
def test_invalid_requests_are_422_and_store_nothing(client, integration, path, body, params):
    response = _post(client, path, body, integration.key, **params)
    assert response.status_code == 422, response.content
    data = response.json()
    assert data["message"] and isinstance(data["took"], float) and uuid.UUID(data["requestId"])
    assert not InboxEvent.objects.exists()


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "GenieKey", "GenieKey " + "0" * 32])
def test_missing_or_unknown_key_is_401(client, integration, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.post(f"{BASE}/v2/alerts", data='{"message": "m"}', content_type="application/json", **extra)
    assert response.status_code == 401 and response.json()["message"] == "Could not authenticate"
    assert not InboxEvent.objects.exists()


def test_disabled_key_is_403_even_with_a_bad_body(client, integration):
    integration.enabled = False
    integration.save()
    assert _post(client, "/v2/alerts", {"message": "m"}, integration.key).status_code == 403
    assert _post(client, "/v2/alerts", {}, integration.key).status_code == 403
    assert not InboxEvent.objects.exists()


def test_a_key_of_another_kind_is_401(client, team):
    pagerduty = IntegrationFactory(team=team, kind=Integration.Kind.PAGERDUTY)
    assert _post(client, "/v2/alerts", {"message": "m"}, pagerduty.key).status_code == 401
    assert not InboxEvent.objects.exists()


def test_request_status_refusals(client, integration):
    assert client.get(f"{BASE}/v2/alerts/requests/{uuid.uuid4()}").status_code == 401
    assert _status(client, "not-a-uuid", integration.key).status_code == 422
    assert _status(client, uuid.uuid4(), integration.key).status_code == 404


def test_api_lists_the_opsgenie_base_url(integration):
    assert IntegrationSerializer(integration).data["endpoint"] == "/integrations/opsgenie/"


MALFORMED = {
    "truncated": '{"message": "Disk',
    "string": '"trigger"',
    "null_byte_raw": '{"message": "m"\x00}',
    "invalid_utf8": b'{"message": "m\xff\xfe"}',
    "deep_nesting": "[" * 100_000 + "]" * 100_000,
    "deep_object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "xml": "<alert><message>down</message></alert>",
}


@pytest.mark.parametrize("path", ["/v2/alerts", "/v2/alerts/x/close"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_bodies_are_422_and_store_nothing(client, integration, path, case):
    response = _post(client, path, MALFORMED[case], integration.key)
    assert response.status_code == 422, response.content[:300]
    assert response.json()["message"]
    assert not InboxEvent.objects.exists()


def test_body_over_the_limit_is_a_413_and_stores_nothing(client, integration, settings):
    settings.BACKSTOP_INTAKE_MAX_BYTES = 100
    response = _post(client, "/v2/alerts", {"message": "m", "description": "x" * 200}, integration.key)
    assert response.status_code == 413 and response.json()["requestId"]
    assert not InboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_served_by_the_production_intake_handler(monkeypatch):
    """Production routes /integrations/ around the portal's middleware (config/wsgi.py): the same answers."""
    integration = IntegrationFactory(team=TeamFactory(), kind=Integration.Kind.OPSGENIE)
    monkeypatch.setattr(kick, "inbox_kick_publish", lambda: None)
    app = PagerDutyWSGI(LeanWSGIHandler())
    auth = {"HTTP_AUTHORIZATION": f"GenieKey {integration.key}"}
    created = call(app, f"{BASE}/v2/alerts", b'{"message": "m", "alias": "a"}', **auth)
    refused = call(app, f"{BASE}/v2/alerts", b'{"message": "m"}', HTTP_AUTHORIZATION="GenieKey nope")
    assert created["status"].startswith("202") and refused["status"].startswith("401")
    request_id = json.loads(created["body"])["requestId"]
    drain()
    status = call(app, f"{BASE}/v2/alerts/requests/{request_id}", method="GET", **auth)
    assert json.loads(status["body"])["data"]["alertId"] == str(Incident.objects.get().pk)


def test_a_request_that_fails_to_apply_reports_failure(client, integration, monkeypatch):
    _post(client, "/v2/alerts", {"message": "m", "alias": "a"}, integration.key)
    drain()

    def broken(**kwargs):
        raise RuntimeError("note store down")

    monkeypatch.setattr(services, "incident_note_add", broken)
    noted = _post(client, "/v2/alerts/a/notes", {"note": "hi"}, integration.key, identifierType="alias")
    drain()
    data = _status(client, noted.json()["requestId"], integration.key).json()["data"]
    assert (data["success"], data["status"]) == (False, "Failed to process request")
