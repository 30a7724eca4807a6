"""The Celery application. Its configuration, beat schedule included, lives in Django settings."""

import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

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
