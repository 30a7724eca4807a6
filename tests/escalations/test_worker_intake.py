"""HTTP intake applied by a real Celery worker over Redis: the debounced kick, and the beat's drain
when the kick is lost."""

import json
import time

import pytest
from django.core.cache import cache

from escalations.intake import kick
from escalations.intake import tasks as intake_tasks
from escalations.models import InboxEvent, Incident
from tests.escalations.intake_payloads import pdpyras_action, pdpyras_trigger
from tests.factories import IntegrationFactory, TeamFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
URL = "/integrations/pagerduty/v2/enqueue"


def _wait_for(predicate, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _post(client, body):
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    return response


def test_accepted_events_are_applied_by_the_worker_after_the_kick(client, celery_worker):
    cache.clear()
    integration = IntegrationFactory(team=TeamFactory())
    for _ in range(3):
        _post(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    _post(client, pdpyras_action("acknowledge", "k", routing_key=integration.key))
    assert _wait_for(lambda: not InboxEvent.objects.filter(processed_at__isnull=True).exists())
    incident = Incident.objects.get()
    assert (incident.status, incident.alert_count) == ("acknowledged", 3)


def test_a_lost_kick_is_covered_by_the_periodic_drain(client, celery_worker, monkeypatch):
    cache.clear()
    monkeypatch.setattr(kick, "inbox_kick_publish", lambda: None)  # as if Redis lost the message
    integration = IntegrationFactory(team=TeamFactory())
    _post(client, pdpyras_trigger(routing_key=integration.key, dedup_key="lost"))
    time.sleep(0.5)
    assert not Incident.objects.exists()
    intake_tasks.inbox_drain_periodic.delay()  # what beat sends every second
    assert _wait_for(lambda: Incident.objects.filter(dedup_key="lost").exists())
