"""The local demo's services on SQLite: roster reads (id arrays, epoch seconds), paging into the
outbox, an SMS reply, handovers (INSERT ... ON CONFLICT DO NOTHING). Only meaningful on SQLite, so
these skip elsewhere; tests/sqlite/test_runner.py runs them from the main suite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from escalations.delivery.sms_replies import sms_reply_handle
from escalations.incidents.advance import incident_advance
from escalations.incidents.services import incident_trigger
from escalations.models import Incident, OutboxMessage, Page
from portal.demo import demo_seed
from portal.models import User
from rotations.handover import handovers_run
from rotations.models import Exclusion, Override, Team
from rotations.selectors import team_oncall_get, team_oncall_users

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db]

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday, Jonas is primary on Payments


@pytest.fixture(autouse=True)
def _only_on_sqlite(settings):
    if connection.vendor != "sqlite":
        pytest.skip("run with --ds=config.settings.test_sqlite")
    # The demo has no Twilio account: pages go to the outbox.
    settings.TWILIO_ACCOUNT_SID = ""


@pytest.fixture
def payments():
    demo_seed(today=NOW.date())
    return Team.objects.get(slug="payments")


def test_roster_reads_keep_microseconds_on_sqlite(payments):
    jonas, aisha = User.objects.get(email="jonas@example.com"), User.objects.get(email="aisha@example.com")
    assert team_oncall_users(team=payments, position="primary", at=NOW) == [jonas]
    start = NOW - timedelta(hours=1, microseconds=-123_457)
    end = NOW + timedelta(hours=2, microseconds=654_321)
    Exclusion.objects.create(user=jonas, start=start, end=end, kind="vacation")
    [shift] = team_oncall_get(team=payments, at=NOW)["primary"]
    assert shift.user_id != jonas.pk and str(shift.reason) == "cover"
    assert (shift.start, shift.end) == (start, end)  # exact: epoch floats round-trip on SQLite too
    override = Override.objects.create(
        rotation=payments.rotations.get(),
        user=aisha,
        position="primary",
        start=NOW - timedelta(minutes=5),
        end=NOW + timedelta(minutes=30, microseconds=7),
    )
    [shift] = team_oncall_get(team=payments, at=NOW)["primary"]
    assert (shift.user_id, shift.end) == (aisha.pk, override.end)


def test_page_to_outbox_and_acknowledge_by_sms_on_sqlite(payments):
    now = datetime.now(UTC)
    incident = incident_trigger(team=payments, title="Checkout failing", source="api").incident
    result = incident_advance(incident_id=incident.pk)
    assert result is not None and result.page_ids
    from escalations.delivery.deliver import page_deliver

    for page in Page.objects.filter(incident=incident, due_at__lte=now + timedelta(seconds=5)):
        page_deliver(page_id=page.pk)
    sms = OutboxMessage.objects.get(incident=incident, channel="sms")
    answer = sms_reply_handle(from_number=sms.to, body=f"{incident.pk}A")
    assert "acknowledged" in answer
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED


def test_handovers_insert_once_on_sqlite(payments):
    monday_handoff = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    first = handovers_run(now=monday_handoff + timedelta(minutes=1))
    again = handovers_run(now=monday_handoff + timedelta(minutes=2))
    assert first.recorded > 0 and again.recorded == 0


def test_intake_inbox_accepts_and_drains_on_sqlite(payments, client, settings):
    """The inbox's INSERT … SELECT … RETURNING and the drain (no advisory lock) on SQLite."""
    import json

    from escalations.intake import drain as intake_drain
    from escalations.models import InboxEvent, Integration

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    integration = Integration.objects.create(team=payments, name="sqlite-pd", kind="pagerduty")
    body = {
        "routing_key": integration.key,
        "event_action": "trigger",
        "dedup_key": "sq",
        "payload": {"summary": "Disk full", "source": "db-1", "severity": "critical"},
    }
    for _ in range(2):
        r = client.post("/integrations/pagerduty/v2/enqueue", json.dumps(body), content_type="application/json")
        assert r.status_code == 202, r.content
    assert InboxEvent.objects.filter(processed_at__isnull=True).count() == 2
    assert intake_drain.inbox_drain() == 2
    incident = Incident.objects.get(dedup_key="sq")
    assert incident.alert_count == 2 and InboxEvent.objects.filter(processed_at__isnull=True).count() == 0
    integration.enabled = False
    integration.save()
    r = client.post("/integrations/pagerduty/v2/enqueue", json.dumps(body), content_type="application/json")
    assert r.status_code == 400 and "disabled" in r.json()["errors"][0]
