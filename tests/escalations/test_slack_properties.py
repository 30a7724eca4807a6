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

steps = st.lists(st.sampled_from(["ack", "escalate", "resolve", "sync", "hold", "release"]), min_size=3, max_size=10)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=steps)
def test_one_message_showing_the_latest_state(fake_slack, script):
    channel = f"C0PROP{next(_channels):05d}"
    team = TeamFactory(slack_channel_id=channel)
    user = MembershipFactory(team=team, role="engineer").user
    incident = incident_services.incident_trigger(team=team, title="Flaky").incident
    # Every change publishes one sync (incidents.timeline -> slack.publish); "sync" runs the oldest one
    # waiting. A sync finding the lease held is not run again here: the holder must render the change.
    pending = 1
    held: list = []
    for step in script:
        now = timezone.now()
        if step in ("ack", "escalate", "resolve"):
            act = {
                "ack": incident_services.incident_acknowledge,
                "escalate": incident_services.incident_escalate,
                "resolve": incident_services.incident_resolve,
            }[step]
            pending += bool(act(incident=incident, by=user, via="slack", now=now))
        elif step == "sync" and pending:
            pending -= 1
            services.incident_message_sync(incident_id=incident.pk, now=now)
        elif step == "hold" and not held and pending:
            pending -= 1
            lease = services._lease_take(incident.pk, now)  # a sync that has rendered, Slack not yet called
            if not isinstance(lease, str):
                held.append(lease)
        elif step == "release" and held:
            _release(incident, held.pop(), now)
    if held:
        _release(incident, held.pop(), timezone.now())
    for _ in range(pending):
        services.incident_message_sync(incident_id=incident.pk, now=timezone.now())

    incident.refresh_from_db()
    messages = fake_slack.messages(channel)
    assert len(messages) == 1
    assert status_line(incident) in messages[0]["text"]


def _release(incident, lease, now) -> None:
    """The held sync's call lands; letting go, it renders again if a change came in meanwhile."""
    if services._lease_release(incident.pk, lease, ts=_held_call_lands(lease), now=now):
        services.incident_message_sync(incident_id=incident.pk, now=now)


def _held_call_lands(lease) -> str:
    """The call the held sync makes: update its message, or post it when it had none yet."""
    from escalations.slack.client import slack_client

    content = {"channel": lease.channel_id, "text": lease.text, "blocks": lease.blocks}
    if lease.ts:
        slack_client().chat_update(ts=lease.ts, **content)
        return lease.ts
    return str(slack_client().chat_postMessage(**content)["ts"])
