"""The Celery application. Its configuration, beat schedule included, lives in Django settings."""

import functools
import gc
import os
from collections.abc import Callable

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init, worker_process_shutdown
from kombu.transport import redis as kombu_redis

# Forgetting DJANGO_SETTINGS_MODULE must not start a DEBUG, MFA-off demo: production refuses to
# start without its secrets, and bin/run, bin/test and the benches choose their settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("backstop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_startup_objects(**_kwargs) -> None:
    # As in config/wsgi.py: long-lived start-up objects stay out of full garbage collections.
    gc.freeze()


@worker_init.connect
def _metrics_serve(**_kwargs) -> None:
    # Prometheus scrapes each worker at WORKER_METRICS_PORT (the web's /metrics shows the web's own
    # counters and the database gauges). Prefork children write their samples to files in
    # PROMETHEUS_MULTIPROC_DIR — one directory per worker, emptied here at start — and this, the parent
    # process, serves them all.
    from config import metrics_process

    metrics_process.worker_metrics_start()


@worker_process_shutdown.connect
def _metrics_process_dead(pid=None, **_kwargs) -> None:
    from config import metrics_process

    metrics_process.process_dead(pid or os.getpid())


@task_prerun.connect
def _task_id_log(task_id=None, **_kwargs) -> None:
    # Every log line of a task carries its id (config.log_json).
    from config.log_json import current_task_id

    current_task_id.set(task_id or "")


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


def _channel_torn_down(qos: kombu_redis.QoS) -> bool:
    connection = qos.channel.connection
    return connection is None or connection.client is None


# Celery 5.7 / kombu 5.7: when the broker connection drops, the worker tears the transport down
# (client = None) and closes the channel (connection = None). Whatever then still talks to that channel
# dies with an AttributeError, which Celery treats as unrecoverable: the worker exits instead of
# reconnecting. Two such paths were seen in the chaos run: putting unacknowledged messages back while
# the channel closes, and a pool process's task finishing after the teardown, whose late ack (or
# reject) reaches the dead channel (both workers at one Redis restart; a whole-process exit is what
# takes pages 100 s late until a supervisor restarts it). With the channel gone nothing can be said to
# that broker connection anyway: the message stays in Redis's unacked set and returns after the
# visibility timeout, to a task that is idempotent, and the escalation sweep and page reconciliation
# find the work long before that. Only the channel's own bookkeeping is dropped.
def _unless_torn_down(method: Callable, forget: Callable) -> Callable:
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if _channel_torn_down(self):
            forget(self, *args)
            return None
        return method(self, *args, **kwargs)

    return guarded


kombu_redis.QoS.restore_unacked = _unless_torn_down(  # type: ignore[method-assign]  # intentional patch
    kombu_redis.QoS.restore_unacked, lambda qos, *_: qos._delivered.clear()
)
kombu_redis.QoS.ack = _unless_torn_down(  # type: ignore[method-assign]  # intentional patch
    kombu_redis.QoS.ack, lambda qos, tag, *_: qos._delivered.pop(tag, None)
)
kombu_redis.QoS.reject = _unless_torn_down(  # type: ignore[method-assign]  # intentional patch
    kombu_redis.QoS.reject, lambda qos, tag, *_: qos._delivered.pop(tag, None)
)
