"""The Slack app end to end with a real Celery worker over Redis: a click signed as Slack signs it,
retried by Slack, acknowledges once, and the channel message then shows the new state."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from escalations.incidents import services as incident_services
from escalations.models import Incident, TimelineEvent
from tests.escalations.slack_helpers import click
from tests.factories import MembershipFactory, TeamFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_retried_click_acknowledges_once_and_the_message_shows_it(fake_slack, celery_worker):
    team = TeamFactory(name="Payments", slack_channel_id="C0PAYMENTS")
    engineer = MembershipFactory(team=team, role="engineer").user
    fake_slack.add_user("U0ENG", engineer.email)
    incident = incident_services.incident_trigger(team=team, title="Checkout errors").incident
    [message] = _wait(lambda: fake_slack.messages("C0PAYMENTS"))
    assert "Triggered" in message["text"]

    client = Client()
    assert click(client, incident_id=incident.pk, slack_user="U0ENG").status_code == 200
    assert click(client, incident_id=incident.pk, slack_user="U0ENG", retry=1).status_code == 200
    name = engineer.display_name
    _wait(lambda: any(f"Acknowledged by {name}" in m["text"] for m in fake_slack.messages("C0PAYMENTS")))
    time.sleep(0.5)  # anything still queued would act now

    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert TimelineEvent.objects.filter(incident=incident, kind=TimelineEvent.Kind.ACKNOWLEDGED).count() == 1
    [message] = fake_slack.messages("C0PAYMENTS")
    assert [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
        "incident_escalate",
        "incident_resolve",
    ]
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert fake_slack.ephemerals == []
