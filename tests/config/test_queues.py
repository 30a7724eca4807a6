"""Queues and the production worker layout: dispatch never waits behind deliveries, and no task is
routed to a queue that no worker of the layout consumes (which would lose it)."""

import pytest
from django.conf import settings

from config.celery import app
from config.queues import DISPATCH_QUEUES, WORKER_QUEUES


def _queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def _consumed() -> dict[str, set[str]]:
    return {"dispatch": set(DISPATCH_QUEUES.split(",")), "worker": set(WORKER_QUEUES.split(","))}


@pytest.mark.parametrize(
    "task", ["escalations.tasks.sweep", "escalations.tasks.incidents_advance", "escalations.tasks.incident_advance"]
)
def test_engine_work_goes_to_the_dispatch_workers_queue_alone(task):
    assert _queue(task) == "escalations"
    consumed = _consumed()
    assert "escalations" in consumed["dispatch"] and "escalations" not in consumed["worker"]


@pytest.mark.parametrize("task", ["escalations.deliver_page", "escalations.deliver_pages"])
def test_deliveries_have_their_own_queue_which_the_dispatch_worker_never_takes(task):
    assert _queue(task) == "deliveries"
    consumed = _consumed()
    assert "deliveries" in consumed["worker"] and "deliveries" not in consumed["dispatch"]


def test_the_layout_consumes_every_declared_queue_once():
    declared = {q.name for q in settings.CELERY_TASK_QUEUES}
    consumed = _consumed()
    assert consumed["dispatch"] | consumed["worker"] == declared
    assert not consumed["dispatch"] & consumed["worker"]


def test_every_task_and_beat_entry_lands_on_a_queue_the_layout_consumes():
    app.loader.import_default_modules()
    consumed = set().union(*_consumed().values())
    ours = [name for name in app.tasks if not name.startswith("celery.")]
    assert "escalations.deliver_pages" in ours and "escalations.tasks.sweep" in ours
    for name in ours:
        assert _queue(name) in consumed, name
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert _queue(entry["task"]) in consumed, entry["task"]


def test_webhook_posts_have_their_own_queue_and_their_sweeps_are_periodic():
    # A slow receiver holds a webhook message up to ~15 s: never in front of pages or the engine.
    assert _queue("escalations.webhooks.deliver") == "webhooks"
    assert _queue("escalations.webhooks.sweep") == "periodic"
    assert _queue("escalations.webhooks.purge") == "periodic"
    assert "webhooks" in _consumed()["worker"]
