"""Webhooks through a real Celery worker over Redis: the commit publishes the delivery, the worker POSTs
it to a local receiver, failures wait in the rows and the beat's sweep task sends them again."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta

import pytest

from escalations.incidents import services as incidents
from escalations.models import WebhookDelivery, WebhookEvent
from escalations.webhooks import events, services, signing
from escalations.webhooks import tasks as webhook_tasks
from tests.factories import TeamFactory
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, seconds=20.0, tick=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        if tick is not None:
            tick()
        time.sleep(0.2)
    return False


def test_the_worker_delivers_after_the_commit_and_the_sweep_retries_failures(celery_worker, settings, monkeypatch):
    settings.BACKSTOP_WEBHOOKS_ALLOW_PRIVATE = True
    # Retries a fraction of a second apart, so the test does not wait out real backoff.
    monkeypatch.setattr("escalations.webhooks.dispatch.BACKOFF", [timedelta(milliseconds=300)])
    receiver = WebhookReceiver().start()
    try:
        team = TeamFactory()
        sub = services.subscription_create(
            team=team, url=receiver.url, events=[events.TRIGGERED, events.RESOLVED], actor=None
        )
        receiver.failing = True
        for n in range(3):
            incident = incidents.incident_trigger(team=team, title=f"Disk full {n}").incident
            incidents.incident_resolve(incident=incident, by=None, via="api")
        # The commit's publish reaches the worker: every delivery is tried once, and fails.
        assert _wait_for(lambda: len(receiver.requests()) >= 6)
        assert _wait_for(
            lambda: (
                not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SENDING).exists()
                and WebhookDelivery.objects.filter(attempts__gte=1).count() == 6
            )
        )
        receiver.failing = False
        # Beat's job: the sweep task claims what is due and publishes it to the worker.
        delivered = _wait_for(
            lambda: WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED).count() == 6,
            tick=webhook_tasks.sweep.delay,
        )
        assert delivered, list(WebhookDelivery.objects.values_list("status", "error"))
    finally:
        receiver.stop()
    accepted = [r for r in receiver.requests() if r.status == 200]
    counts = Counter(r.headers["webhook-id"] for r in accepted)
    assert set(counts) == set(WebhookEvent.objects.values_list("public_id", flat=True))
    assert set(counts.values()) == {1}
    for r in receiver.requests():
        assert signing.verify(
            secret=sub.secret, headers=r.headers, body=r.body, now=int(r.headers["webhook-timestamp"])
        )
        assert json.loads(r.body)["id"] == r.headers["webhook-id"]
