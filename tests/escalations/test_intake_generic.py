"""Generic webhook (JSON and form) and heartbeats."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache

from escalations.intake import heartbeats
from escalations.intake.tasks import heartbeats_check
from escalations.models import Alert, Heartbeat, Incident, TimelineEvent
from portal.models import JobRun
from tests.escalations.inbox_helpers import post_and_drain
from tests.factories import T0, HeartbeatFactory, IntegrationFactory, MaintenanceWindowFactory

pytestmark = pytest.mark.django_db
MIN = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def integration(team):
    return IntegrationFactory(team=team, kind="generic")


def url(integration):
    return f"/integrations/generic/{integration.key}/"


def test_generic_json_trigger_and_resolve(client, integration):
    r = post_and_drain(
        client,
        url(integration),
        data=json.dumps(
            {"summary": "Backup failed", "details": {"rc": 2}, "severity": "warning", "dedup_key": "backup"}
        ),
        content_type="application/json",
    )
    assert r.status_code == 202 and r.json()["dedup_key"] == "backup"
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.dedup_key) == ("Backup failed", "warning", "backup")
    r = post_and_drain(
        client,
        url(integration),
        data=json.dumps({"action": "resolve", "dedup_key": "backup"}),
        content_type="application/json",
    )
    assert r.status_code == 202
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_generic_form(client, integration):
    r = post_and_drain(
        client, url(integration), data={"summary": "Disk 91%", "severity": "critical", "dedup_key": "disk"}
    )
    assert r.status_code == 202
    assert Incident.objects.get().title == "Disk 91%"
    r = post_and_drain(client, url(integration), data={"action": "acknowledge", "dedup_key": "disk"})
    assert Incident.objects.get().status == "acknowledged"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"details": "no summary"}', "application/json"),
        ('{"summary": "x", "severity": "sev0"}', "application/json"),
        ("{broken", "application/json"),
        ("details=only", "application/x-www-form-urlencoded"),
        ('{"action": "resolve"}', "application/json"),
    ],
)
def test_generic_invalid_400_nothing_stored(client, integration, data, content_type):
    r = post_and_drain(client, url(integration), data=data, content_type=content_type)
    assert r.status_code == 400 and r.json()["errors"]
    assert (Incident.objects.count(), Alert.objects.count(), TimelineEvent.objects.count()) == (0, 0, 0)


def test_heartbeat_missed_opens_one_incident_and_ping_resolves(team, client):
    hb = HeartbeatFactory(team=team, interval=10 * MIN, grace=2 * MIN)
    heartbeats.heartbeat_ping(heartbeat=hb, now=T0)
    assert heartbeats.heartbeats_check(now=T0 + 12 * MIN) == []  # exactly at the deadline: not yet
    opened = heartbeats.heartbeats_check(now=T0 + 12 * MIN + timedelta(seconds=1))
    assert len(opened) == 1
    incident = opened[0]
    assert (incident.source, incident.severity, incident.title) == (
        "heartbeat",
        "critical",
        f"Missed heartbeat: {hb.name}",
    )
    # Idempotent: further checks open nothing more.
    assert heartbeats.heartbeats_check(now=T0 + 30 * MIN) == []
    assert heartbeats.heartbeats_check(now=T0 + 60 * MIN) == []
    hb.refresh_from_db()
    assert (hb.state, hb.open_incident) == ("down", incident)

    assert heartbeats.heartbeat_ping(heartbeat=hb, now=T0 + 61 * MIN) is True
    incident.refresh_from_db()
    hb.refresh_from_db()
    assert incident.status == "resolved" and hb.state == "up" and hb.open_incident is None
    # It can go down again later: a new incident.
    assert len(heartbeats.heartbeats_check(now=T0 + 74 * MIN)) == 1
    assert Incident.objects.filter(source="heartbeat").count() == 2


def test_heartbeat_never_pinged_counts_from_creation(team):
    HeartbeatFactory(team=team, created_at=T0, interval=5 * MIN, grace=MIN)
    assert heartbeats.heartbeats_check(now=T0 + 5 * MIN) == []
    assert len(heartbeats.heartbeats_check(now=T0 + 7 * MIN)) == 1


def test_disabled_heartbeat_is_not_checked(team):
    HeartbeatFactory(team=team, enabled=False)
    assert heartbeats.heartbeats_check(now=T0 + timedelta(days=1)) == []


def test_heartbeat_in_maintenance_is_suppressed(team):
    HeartbeatFactory(team=team, interval=5 * MIN, grace=0 * MIN)
    MaintenanceWindowFactory(team=team, start=T0, end=T0 + timedelta(hours=1))
    (incident,) = heartbeats.heartbeats_check(now=T0 + 10 * MIN)
    assert incident.suppressed and incident.next_action_at is None


def test_heartbeat_http_ping_get_and_post(client, team):
    hb = HeartbeatFactory(team=team)
    assert client.get(f"/integrations/heartbeat/{hb.token}/").status_code == 200
    hb.refresh_from_db()
    first = hb.last_ping_at
    assert first is not None and hb.state == "up"
    assert client.post(f"/integrations/heartbeat/{hb.token}/").status_code == 200
    assert client.get("/integrations/heartbeat/nope/").status_code == 404
    assert client.put(f"/integrations/heartbeat/{hb.token}/").status_code == 405


def test_heartbeat_task_records_job_run(team):
    HeartbeatFactory(team=team, created_at=T0, interval=MIN, grace=MIN)
    assert heartbeats_check() == 1
    assert JobRun.objects.get(name="heartbeat-check").last_success_at is not None
    assert Heartbeat.objects.get().state == "down"


def test_beat_schedule_and_imports():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["heartbeat-check"]["task"] == "escalations.intake_tasks.heartbeats_check"
    assert settings.CELERY_BEAT_SCHEDULE["heartbeat-check"]["schedule"] == 30.0
    assert "escalations.intake.tasks" in settings.CELERY_IMPORTS
