"""The console's event lines (escalations.events, logger `backstop.events`): one line per incident
opened, step reached, acknowledged or resolved and per page sent, written only once the change has committed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from escalations.delivery.deliver import pages_deliver
from escalations.delivery.sms_replies import sms_reply_handle
from escalations.incidents.advance import incident_advance
from escalations.incidents.services import incident_resolve, incident_trigger
from escalations.models import Page
from portal.demo import demo_seed
from rotations.models import Team

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday: Jonas is primary on Payments


@pytest.fixture
def payments(settings):
    settings.TWILIO_ACCOUNT_SID = ""  # the demo has no Twilio account: pages go to the outbox
    demo_seed(today=NOW.date(), now=NOW)
    return Team.objects.get(slug="payments")


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "backstop.events"]


def test_one_line_each_for_open_page_acknowledge_and_resolve(payments, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.INFO, logger="backstop.events")
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_trigger(
            team=payments, title="Checkout   failing\nfor everyone", source="api", now=NOW
        ).incident
    with django_capture_on_commit_callbacks(execute=True):
        incident_advance(incident_id=incident.pk, now=NOW)
        due = Page.objects.filter(incident=incident, due_at__lte=NOW)
        pages_deliver(page_ids=list(due.values_list("pk", flat=True)), now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        sms_reply_handle(from_number="+15550100002", body=f"{incident.pk}A", now=NOW + timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        incident_resolve(incident=incident, by=None, via="api", now=NOW + timedelta(minutes=2))
    assert _lines(caplog) == [
        f"Incident #{incident.pk} opened for Payments (api): Checkout failing for everyone",
        f"Incident #{incident.pk} reached step 1: paging Jonas Weber",
        f"Paged Jonas Weber by SMS about incident #{incident.pk} — in the outbox (/outbox/)",
        f"Paged Jonas Weber by e-mail about incident #{incident.pk}",
        f"Incident #{incident.pk} acknowledged by Jonas Weber via SMS reply",
        f"Incident #{incident.pk} resolved by Backstop via API",
    ]


def test_nothing_is_announced_that_rolls_back(payments, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.INFO, logger="backstop.events")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        incident_trigger(team=payments, title="Never opened", now=NOW)
        raise RuntimeError("rolled back")
    assert _lines(caplog) == []
