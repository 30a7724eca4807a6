"""Group commit of intake INSERTs: concurrent accepts of one process share one statement, and each
caller still gets exactly its own outcome (its row's id, its refusal, its error) after the commit.

The database tests run in autocommit with real threads, each on its own connection, as gthread
workers do under gunicorn.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from django.db import connection, connections
from django.utils import timezone

from escalations.intake import inbox
from escalations.intake.group_commit import GroupCommit
from escalations.intake.parsers import EventInvalid
from escalations.models import InboxEvent, Integration
from tests.factories import IntegrationFactory, TeamFactory

# --- the batching itself (no database) ------------------------------------------------------------


def _run_all(group: GroupCommit, n: int, run) -> list:
    """n threads submit i (0..n-1) at once; returns each one's result or exception."""
    out: list = [None] * n
    start = threading.Barrier(n)

    def call(i: int) -> None:
        start.wait()
        try:
            out[i] = group.submit(i, run)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return out


def test_concurrent_callers_share_batches_and_each_gets_its_own_result():
    group: GroupCommit[int, int] = GroupCommit()
    sizes: list[int] = []

    def run(batch: list[int]) -> list[int]:
        sizes.append(len(batch))
        time.sleep(0.02)  # a commit: the others queue meanwhile
        return [x * 10 for x in batch]

    assert _run_all(group, 16, run) == [i * 10 for i in range(16)]
    assert sum(sizes) == 16 and len(sizes) < 16 and max(sizes) > 1
    assert (group.batches, group.items) == (len(sizes), 16)


def test_a_lone_caller_is_served_at_once_alone():
    group: GroupCommit[str, str] = GroupCommit()
    assert group.submit("a", lambda batch: [b.upper() for b in batch]) == "A"
    assert group.submit("b", lambda batch: [b.upper() for b in batch]) == "B"
    assert (group.batches, group.items) == (2, 2)


def test_an_item_outcome_exception_fails_that_caller_only():
    group: GroupCommit[int, int] = GroupCommit()

    def run(batch: list[int]):
        time.sleep(0.01)
        return [ValueError(f"bad {x}") if x % 3 == 0 else x for x in batch]

    out = _run_all(group, 9, run)
    for i, outcome in enumerate(out):
        if i % 3 == 0:
            assert isinstance(outcome, ValueError) and str(outcome) == f"bad {i}"
        else:
            assert outcome == i


def test_a_failing_batch_fails_all_its_callers_and_the_next_batch_runs():
    group: GroupCommit[int, int] = GroupCommit()
    calls = []

    def run(batch: list[int]):
        calls.append(list(batch))
        time.sleep(0.01)
        if len(calls) == 1:
            raise ConnectionError("lost")
        return batch

    out = _run_all(group, 8, run)
    failed = [i for i, o in enumerate(out) if isinstance(o, ConnectionError)]
    assert sorted(failed) == sorted(calls[0])
    assert all(out[i] == i for i in range(8) if i not in failed)
    # Nobody is left waiting, and the group leads afresh afterwards.
    assert group.submit(99, lambda batch: batch) == 99


# --- against PostgreSQL, in autocommit ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_accepts_store_each_event_once_with_its_own_outcome():
    if connection.vendor != "postgresql":
        pytest.skip("the group-commit path is PostgreSQL's")
    team = TeamFactory()
    key = IntegrationFactory(team=team, kind=Integration.Kind.PAGERDUTY).key
    disabled = IntegrationFactory(team=team, kind=Integration.Kind.PAGERDUTY, enabled=False).key
    n = 24
    special = {3: "nul", 5: "unknown", 6: "disabled"}
    kinds = {i: special.get(i % 8, "ok") for i in range(n)}
    before = (inbox.accept_group.batches, inbox.accept_group.items)
    out: dict[int, object] = {}
    start = threading.Barrier(n)

    def accept(i: int) -> None:
        routing = {"unknown": "f" * 32, "disabled": disabled}.get(kinds[i], key)
        summary = "a\\u0000b" if kinds[i] == "nul" else f"event {i}"
        try:
            start.wait()
            out[i] = inbox.inbox_accept(
                key=routing,
                integration_kind=Integration.Kind.PAGERDUTY,
                kind=InboxEvent.Kind.PAGERDUTY,
                action="trigger",
                dedup_key=f"k{i}",
                payload=json.dumps({"summary": "@", "i": i}).replace("@", summary),
                now=timezone.now(),
                request_id=uuid.uuid4() if i % 2 else None,
            )
        except Exception as exc:
            out[i] = exc
        finally:
            connections.close_all()

    # Rounds until the group actually batched (threads start together, but scheduling decides).
    for _ in range(5):
        threads = [threading.Thread(target=accept, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        for i in range(n):
            outcome = out[i]
            if kinds[i] == "ok":
                row = InboxEvent.objects.get(pk=outcome)
                assert (row.dedup_key, json.loads(json.dumps(row.payload))["i"]) == (f"k{i}", i)
                assert (row.request_id is None) == (i % 2 == 0)
            elif kinds[i] == "nul":
                assert isinstance(outcome, EventInvalid), outcome
            else:
                assert isinstance(outcome, inbox.InboxRefused) and outcome.reason == kinds[i], outcome
        batches, items = inbox.accept_group.batches - before[0], inbox.accept_group.items - before[1]
        if batches < items:
            break
    else:
        pytest.fail("24 concurrent accepts never shared a statement in 5 rounds")
    ok = sum(1 for k in kinds.values() if k == "ok")
    # Each round stored each good event exactly once, in arrival order of ids.
    assert InboxEvent.objects.count() == ok * (items // n)
