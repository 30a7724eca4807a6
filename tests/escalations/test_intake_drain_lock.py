"""A drainer that finds the drain lock taken returns at once and kicks, instead of holding its worker
process until the other drainer is done (under sustained intake both processes of the worker then
waited or drained while deliveries queued behind them)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from config import locks
from escalations.intake import drain as intake_drain
from escalations.intake import inbox, kick
from escalations.models import InboxEvent, Integration
from tests.escalations.intake_payloads import pdpyras_trigger
from tests.factories import IntegrationFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _accept(key: str, n: int) -> None:
    import json

    from django.utils import timezone

    inbox.inbox_accept(
        key=key,
        integration_kind=Integration.Kind.PAGERDUTY,
        kind=InboxEvent.Kind.PAGERDUTY,
        action="trigger",
        dedup_key=f"lock-{n}",
        payload=json.dumps(pdpyras_trigger(routing_key=key, dedup_key=f"lock-{n}")),
        now=timezone.now(),
    )


def test_a_drainer_finding_the_lock_taken_kicks_and_returns_and_the_next_applies(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the drain lock is PostgreSQL's")
    kicks: list[float] = []
    monkeypatch.setattr(kick, "inbox_kick", lambda **kw: kicks.append(time.monotonic()))
    key = IntegrationFactory(team=TeamFactory(), kind=Integration.Kind.PAGERDUTY).key
    for n in range(3):
        _accept(key, n)
    dsn = connection.get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in dsn.items() if k in ("dbname", "user", "password", "host", "port")})
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [locks.INBOX_DRAIN])
        started = time.monotonic()
        done = []
        drainer = threading.Thread(target=lambda: done.append(intake_drain.inbox_drain()))
        drainer.start()
        drainer.join(5)
        assert done == [0] and time.monotonic() - started < 5, "the drainer waited for the lock"
        assert len(kicks) == 1
        assert InboxEvent.objects.filter(processed_at__isnull=True).count() == 3
    finally:
        holder.rollback()
        holder.close()
    # The kicked drain (here called directly) takes the free lock and applies everything.
    assert intake_drain.inbox_drain() == 3
    assert len(kicks) == 1
    assert not InboxEvent.objects.filter(processed_at__isnull=True).exists()
