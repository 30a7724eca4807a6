"""Worker processes keep their database connection between tasks, as the web process does between
requests: a new PostgreSQL backend per task cost more CPU than the task itself."""

import time

import pytest
from celery.signals import task_postrun, task_prerun
from django.db import connection

from config.celery import app


def test_celerys_django_fixup_no_longer_closes_the_connection_around_every_task():
    assert app.conf.db_reuse_max >= 100


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signal", [task_prerun, task_postrun])
def test_around_each_task_the_connection_is_kept_until_conn_max_age(signal, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    connection.ensure_connection()
    backend = connection.connection
    signal.send(sender=None, task_id="t", task=None, args=(), kwargs={})
    assert connection.connection is backend  # reused by the next task

    connection.close_at = time.monotonic() - 1  # older than CONN_MAX_AGE
    signal.send(sender=None, task_id="t", task=None, args=(), kwargs={})
    assert connection.connection is None  # the next task opens a fresh one


@pytest.mark.django_db
def test_a_task_run_eagerly_leaves_its_callers_connection_and_transaction_alone(settings):
    from escalations.incidents.tasks import incidents_advance

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    try:
        backend = connection.connection
        incidents_advance.delay([10**9])  # prerun and postrun fire inside the test's transaction
        assert connection.connection is backend and connection.in_atomic_block
    finally:
        app.conf.task_always_eager = False
