"""The Celery application. Its configuration, beat schedule included, lives in Django settings."""

import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("backstop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_startup_objects(**_kwargs) -> None:
    # As in config/wsgi.py: long-lived start-up objects stay out of full garbage collections.
    gc.freeze()


@task_prerun.connect
@task_postrun.connect
def _connections_recycle(sender=None, **_kwargs) -> None:
    # As Django does around every request: keep the database connection for CONN_MAX_AGE and drop it
    # when obsolete or broken. Celery's own Django fixup would close it around every task (see
    # CELERY_DB_REUSE_MAX): a new PostgreSQL backend costs ~10 ms of CPU, more than dispatching a step.
    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # run inline by its caller (eager mode): the connection and transaction are the caller's
    from django.db import close_old_connections

    close_old_connections()


_restore_unacked = kombu_redis.QoS.restore_unacked


def _restore_unacked_unless_torn_down(self, client=None):
    # Celery 5.7 / kombu 5.7: when the broker connection drops, the worker first tears the transport
    # down (client = None) and then closes the channel, whose "put unacknowledged messages back" step
    # then dies on the missing client with an AttributeError that Celery treats as unrecoverable: the
    # worker exits instead of reconnecting (every worker, at every Redis restart, in the chaos run).
    # With the broker gone nothing can be put back now anyway: the messages stay in Redis's unacked
    # set and return after the visibility timeout, and the escalation sweep and page reconciliation
    # find the work long before that.
    if self.channel.connection.client is None:
        self._delivered.clear()
        return None
    return _restore_unacked(self, client)


kombu_redis.QoS.restore_unacked = _restore_unacked_unless_torn_down
