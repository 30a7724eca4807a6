"""A worker rides out a Redis restart: late acknowledgements on a torn-down channel are not fatal.

When the broker connection drops, Celery 5.7 tears kombu's transport down and closes the channel. A
task that a pool process finishes after that acknowledges its message on the dead channel; unguarded,
kombu raises AttributeError, which Celery treats as unrecoverable, and the whole worker exits (seen in
the chaos run: both workers at one Redis restart, steps 100 s late until a supervisor restarted them).
These tests drive real kombu over the test Redis into exactly those states.
"""

import contextlib
import uuid

import pytest
import redis
from django.conf import settings
from kombu import Connection

import config.celery  # noqa: F401 - installs the guards


def _connection() -> Connection:
    return Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS)


@contextlib.contextmanager
def _redis():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        yield client, settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    finally:
        client.close()


def _unacked_tags() -> set[str]:
    with _redis() as (client, prefix):
        return {tag.decode() for tag in client.hkeys(f"{prefix}unacked")}


def _held_by_the_broker(queue, delivery_tag: str) -> bool:
    """In the unacked set (returns after the visibility timeout) or already back in its queue."""
    with _redis() as (client, prefix):
        return delivery_tag in _unacked_tags() or client.llen(f"{prefix}{queue.queue.name}") == 1


def _received_message(connection: Connection):
    queue = connection.SimpleQueue(f"teardown-{uuid.uuid4().hex}")
    queue.put({"task": "page"})
    message = queue.get(block=True, timeout=5)
    assert message.delivery_tag in _unacked_tags()
    return queue, message


def _tear_down_as_the_worker_does(connection: Connection, channel) -> None:
    channel.close()  # channel.connection = None
    # With Redis down, closing could not reconnect to put messages back; here Redis is up, so drop the
    # pool that doing so created, leaving the channel as a restart leaves it: no pool, no connection.
    channel._disconnect_pools()
    connection._do_close_transport()  # transport.client = None


@pytest.fixture
def torn_down_delivery():
    """A message received by a task whose worker's channel was then torn down: (queue, message, qos)."""
    connection = _connection()
    try:
        queue, message = _received_message(connection)
        qos = message.channel.qos
        _tear_down_as_the_worker_does(connection, message.channel)
        yield queue, message, qos
    finally:
        connection.release()


@pytest.mark.parametrize("settle", ["ack", "reject", "requeue"])
def test_a_task_finishing_after_the_teardown_settles_its_message_without_killing_the_worker(settle, torn_down_delivery):
    queue, message, qos = torn_down_delivery

    if settle == "ack":
        message.ack()
    else:
        message.reject(requeue=settle == "requeue")

    assert message.delivery_tag not in qos._delivered
    # Nothing could be said to the broker: the message comes back to an idempotent task.
    assert _held_by_the_broker(queue, message.delivery_tag)


def test_putting_unacknowledged_messages_back_on_a_torn_down_channel_is_skipped(torn_down_delivery):
    queue, message, qos = torn_down_delivery

    qos.restore_unacked()

    assert not qos._delivered
    assert _held_by_the_broker(queue, message.delivery_tag)


def test_on_a_live_channel_acknowledgements_still_reach_redis():
    connection = _connection()
    try:
        queue, message = _received_message(connection)
        message.ack()
        assert message.delivery_tag not in _unacked_tags()

        queue.put({"task": "page"})
        requeued = queue.get(block=True, timeout=5)
        requeued.reject(requeue=True)
        assert requeued.delivery_tag not in _unacked_tags()
        assert queue.get(block=True, timeout=5).payload == {"task": "page"}  # back in the queue
    finally:
        connection.release()
