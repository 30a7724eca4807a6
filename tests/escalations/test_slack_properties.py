"""Hypothesis: however incident changes and message syncs interleave — syncs overlapping, a sync in
flight while the incident changes again — the channel ends with exactly one message per incident, and
it shows the incident as it is."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalations.incidents import services as incident_services
from escalations.slack import services
from escalations.slack.blocks import status_line
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

_channels = itertools.count()

steps = st.lists(st.sampled_from(["ack", "escalate", "resolve", "sync", "hold", "release"]), min_size=1, max_size=12)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=steps)
def test_one_message_showing_the_latest_state(fake_slack, script):
    channel = f"C0PROP{next(_channels):05d}"
    team = TeamFactory(slack_channel_id=channel)
    user = MembershipFactory(team=team, role="engineer").user
    incident = incident_services.incident_trigger(team=team, title="Flaky").incident
    held: list = []
    for step in script:
        now = timezone.now()
        if step == "ack":
            incident_services.incident_acknowledge(incident=incident, by=user, via="slack", now=now)
        elif step == "escalate":
            incident_services.incident_escalate(incident=incident, by=user, via="slack", now=now)
        elif step == "resolve":
            incident_services.incident_resolve(incident=incident, by=user, via="slack", now=now)
        elif step == "sync":
            services.incident_message_sync(incident_id=incident.pk, now=now)
        elif step == "hold" and not held:
            lease = services._lease_take(incident.pk, now)  # a sync that has rendered, Slack not yet called
            if not isinstance(lease, str):
                held.append(lease)
        elif step == "release" and held:
            # The held sync's call lands, then it lets go.
            lease = held.pop()
            ts = _held_call_lands(lease)
            if services._lease_release(incident.pk, lease, ts=ts, now=now):
                services.incident_message_sync(incident_id=incident.pk, now=now)
    if held:
        lease = held.pop()
        ts = _held_call_lands(lease)
        if services._lease_release(incident.pk, lease, ts=ts, now=timezone.now()):
            services.incident_message_sync(incident_id=incident.pk, now=timezone.now())
    services.incident_message_sync(incident_id=incident.pk, now=timezone.now())

    incident.refresh_from_db()
    messages = fake_slack.messages(channel)
    assert len(messages) == 1
    assert status_line(incident) in messages[0]["text"]


def _held_call_lands(lease) -> str:
    """The call the held sync makes: update its message, or post it when it had none yet."""
    from escalations.slack.client import slack_client

    content = {"channel": lease.channel_id, "text": lease.text, "blocks": lease.blocks}
    if lease.ts:
        slack_client().chat_update(ts=lease.ts, **content)
        return lease.ts
    return str(slack_client().chat_postMessage(**content)["ts"])
