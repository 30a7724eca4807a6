"""Calls, recordings, outbox rows and payloads are purged after their retention."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from escalations.models import Alert, CallRecord, Incident, OutboxMessage
from escalations.retention import services as retention
from escalations.retention import tasks
from tests.factories import IncidentFactory, IntegrationFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - timedelta(days=100)


def call(n: int, *, started_at, recording: bool = True, simulated: bool = False) -> CallRecord:
    sid = f"RE{n:032x}"
    return CallRecord.objects.create(
        call_sid=f"CA{n:032x}",
        from_number="+15550142001",
        to_number="+15550100999",
        started_at=started_at,
        recording_sid=sid if recording else "",
        transcript="Checkout is down",
        recording_url=f"https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/{sid}" if recording else "",
        simulated=simulated,
    )


def test_old_calls_and_their_recordings_are_deleted(fake_twilio, settings):
    settings.BACKSTOP_CALL_RETENTION = timedelta(days=90)
    old, old_no_recording, old_simulated = (
        call(1, started_at=OLD),
        call(2, started_at=OLD, recording=False),
        call(3, started_at=OLD, simulated=True),
    )
    recent = call(4, started_at=NOW - timedelta(days=10))
    deleted, recordings, kept = retention.calls_purge(now=NOW, chunk=2)
    assert (deleted, recordings, kept) == (3, 1, 0)
    assert list(CallRecord.objects.values_list("pk", flat=True)) == [recent.pk]
    assert fake_twilio.deleted_recordings() == [old.recording_sid]
    assert old_no_recording and old_simulated  # no Twilio request for either


def test_a_recording_twilio_did_not_delete_keeps_its_call_for_the_next_run(fake_twilio, settings):
    settings.BACKSTOP_CALL_RETENTION = timedelta(days=90)
    record = call(1, started_at=OLD)
    fake_twilio.plan("500")
    assert retention.calls_purge(now=NOW) == (0, 0, 1)
    assert CallRecord.objects.filter(pk=record.pk).exists()
    assert retention.calls_purge(now=NOW) == (1, 1, 0)
    assert not CallRecord.objects.exists()


def test_old_outbox_rows_are_deleted(settings):
    settings.BACKSTOP_OUTBOX_RETENTION = timedelta(days=30)
    OutboxMessage.objects.create(channel="sms", to="+15550142001", body="code 123456", created_at=OLD)
    keep = OutboxMessage.objects.create(channel="sms", to="+15550142001", body="recent", created_at=NOW)
    assert retention.outbox_purge(now=NOW, chunk=1) == 1
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [keep.pk]


def test_payloads_of_old_alerts_and_long_resolved_incidents_are_emptied(settings):
    settings.BACKSTOP_PAYLOAD_RETENTION = timedelta(days=90)
    integration = IntegrationFactory()
    old_alert = Alert.objects.create(
        integration=integration, received_at=OLD, action="trigger", status="created", payload={"caller": "+15550142001"}
    )
    new_alert = Alert.objects.create(
        integration=integration, received_at=NOW, action="trigger", status="created", payload={"caller": "+15550142002"}
    )
    resolved = IncidentFactory(
        team=integration.team, payload={"caller": "+1"}, status=Incident.Status.RESOLVED, resolved_at=OLD
    )
    open_old = IncidentFactory(team=integration.team, payload={"caller": "+2"})
    Incident.objects.filter(pk=open_old.pk).update(created_at=OLD)
    assert retention.payloads_purge(now=NOW, chunk=1) == 2
    for obj, payload in (
        (old_alert, {}),
        (new_alert, {"caller": "+15550142002"}),
        (resolved, {}),
        (open_old, {"caller": "+2"}),
    ):
        obj.refresh_from_db()
        assert obj.payload == payload
    assert retention.payloads_purge(now=NOW) == 0


def test_the_beat_runs_the_purge_on_the_periodic_queue(settings):
    settings.BACKSTOP_OUTBOX_RETENTION = timedelta(days=1)
    OutboxMessage.objects.create(channel="email", to="a@example.com", body="reset link", created_at=OLD)
    entry = django_settings.CELERY_BEAT_SCHEDULE["retention-purge"]
    assert entry["task"] == tasks.retention_purge.name
    assert django_settings.CELERY_TASK_ROUTES[tasks.retention_purge.name] == {"queue": "periodic"}
    assert tasks.retention_purge() == 1 and not OutboxMessage.objects.exists()
