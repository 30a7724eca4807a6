"""Alertmanager webhook v4: one incident per (receiver, groupKey), resolved when all alerts are."""

import json

import pytest
from django.core.cache import cache

from escalations.models import Alert, AlertGroupMember, Incident, TimelineEvent
from tests.escalations.inbox_helpers import post_and_drain
from tests.escalations.intake_payloads import am_message
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def integration(team):
    return IntegrationFactory(team=team, kind="alertmanager")


def send(client, integration, body):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return post_and_drain(
        client,
        f"/integrations/alertmanager/{integration.key}/",
        data=data,
        content_type="application/json",
        HTTP_USER_AGENT="Alertmanager/0.27.0",
    )


def counts():
    return (
        Incident.objects.count(),
        Alert.objects.count(),
        TimelineEvent.objects.count(),
        AlertGroupMember.objects.count(),
    )


def test_group_lifecycle(client, integration):
    r = send(client, integration, am_message(("firing", "firing")))
    # Accepted, applied by the drain: the answer cannot know the incident yet.
    group = 'backstop/{}/{severity="critical"}:{alertname="HighLatency"}'
    assert r.status_code == 200 and r.json() == {"status": "success", "message": "Event accepted", "dedup_key": group}
    incident = Incident.objects.get()
    assert incident.group_members.filter(status="firing").count() == 2
    assert (incident.title, incident.severity, incident.status) == ("HighLatency", "critical", "triggered")
    assert incident.payload["alertmanager"]["commonLabels"]["job"] == "api"
    assert [a["labels"]["instance"] for a in incident.payload["alertmanager"]["alerts"]] == ["api-1:9100", "api-2:9100"]
    assert {"href": "http://alertmanager:9093", "text": "Alertmanager"} in incident.links

    # Alertmanager re-sends the whole group: one resolved, one still firing -> still open.
    send(client, integration, am_message(("resolved", "firing")))
    incident.refresh_from_db()
    assert incident.status == "triggered" and Incident.objects.count() == 1
    assert dict(incident.group_members.values_list("fingerprint", "status")) == {
        "a1b2c3d4e5f60718": "resolved",
        "b1b2c3d4e5f60718": "firing",
    }

    r = send(client, integration, am_message(("resolved", "resolved")))
    assert r.status_code == 200 and not incident.group_members.filter(status="firing").exists()
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.timeline.filter(kind="resolved", via="integration").exists()

    # The same group fires again: a new incident.
    send(client, integration, am_message(("firing", "resolved")))
    assert Incident.objects.count() == 2
    new = Incident.objects.exclude(pk=incident.pk).get()
    assert new.status == "triggered" and new.group_members.get(status="firing").fingerprint == "a1b2c3d4e5f60718"


def test_resolved_only_message_for_unknown_group_is_recorded_noop(client, integration):
    r = send(client, integration, am_message(("resolved", "resolved")))
    assert r.status_code == 200
    assert Incident.objects.count() == 0
    assert set(Alert.objects.values_list("status", flat=True)) == {"ignored"}


def test_truncated_group_is_not_resolved_on_partial_view(client, integration):
    send(client, integration, am_message(("firing", "firing")))
    body = am_message(("resolved", "resolved"))
    body["status"] = "firing"  # Alertmanager says the group still fires: some alerts were truncated
    body["truncatedAlerts"] = 3
    send(client, integration, body)
    assert Incident.objects.get().status == "triggered"


def test_groups_from_different_receivers_are_separate(client, integration):
    send(client, integration, am_message())
    other = am_message()
    other["receiver"] = "team-b"
    send(client, integration, other)
    assert Incident.objects.count() == 2


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"version": "4", "groupKey": "x", "alerts": [',
        json.dumps({**am_message(), "alerts": "none"}).encode(),
        json.dumps({**am_message(), "version": 4}).encode(),
        json.dumps([am_message()]).encode(),
    ],
)
def test_malformed_400_nothing_stored(client, integration, body):
    before = counts()
    r = send(client, integration, body)
    assert r.status_code == 400
    assert r.json()["errors"]
    assert counts() == before


def test_one_bad_alert_rejects_the_whole_message(client, integration):
    body = am_message()
    body["alerts"][1]["labels"] = "oops"
    assert send(client, integration, body).status_code == 400
    assert counts() == (0, 0, 0, 0)


def test_unknown_key_404_and_disabled_400(client, integration):
    assert send(client, IntegrationFactory.build(key="z" * 32), am_message()).status_code == 404
    integration.enabled = False
    integration.save()
    r = send(client, integration, am_message())
    assert r.status_code == 400 and "disabled" in r.json()["message"]
    assert Incident.objects.count() == 0


def test_pagerduty_key_is_not_an_alertmanager_key(client, team):
    pd = IntegrationFactory(team=team, kind="pagerduty")
    assert send(client, pd, am_message()).status_code == 404
