"""Group commit: the intake requests a web process serves at the same moment share one INSERT.

Each accepted event used to cost PostgreSQL a statement and a commit (a WAL flush) of its own; at a
few thousand events a second that was a third of the machine. A gthread worker serves several
requests at once, and while one thread waits for its commit the others pile up behind it. Here the
first caller becomes the leader and stores every event waiting at that moment with one statement on
its own connection; the others wait for the outcome of their row. When the leader is done, the first
caller that arrived meanwhile leads the next batch. Nothing waits for a batch to fill: a lone request
is stored at once, alone, exactly as before, so an idle process adds no latency; under load the
batch is whatever queued during the previous commit.

The commit is still the durability point: every caller returns only after the statement holding its
row has committed, and a failure of that statement fails every caller in it (each sender then gets
a 5xx and retries). No database here: `run` (given by each caller, used when it leads) does the work.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

P = TypeVar("P")
R = TypeVar("R")

__all__ = ["GroupCommit"]


class _Slot(Generic[P, R]):
    __slots__ = ("done", "error", "lead", "params", "result")

    def __init__(self, params: P) -> None:
        self.params = params
        self.done = threading.Event()
        self.lead = False  # woken to lead the next batch rather than with an outcome
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[P, R]):
    """Batches concurrent `submit` calls of one process. Thread-safe; the lock covers bookkeeping only.

    `run(batch)` stores a batch and returns one outcome per item, in order: a result, or an exception
    to raise in that item's caller (so one bad item need not fail the others). An exception raised by
    `run` itself fails every item of the batch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Slot[P, R]] = []
        self._leading = False
        self.batches = 0  # statements run, and items stored through them (figures for the benchmarks)
        self.items = 0

    def submit(self, params: P, run: Callable[[list[P]], Sequence[R | BaseException]]) -> R:
        slot: _Slot[P, R] = _Slot(params)
        with self._lock:
            self._pending.append(slot)
            follow = self._leading
            self._leading = True
        if follow:
            slot.done.wait()
        if not follow or slot.lead:
            self._lead(run)
        if slot.error is not None:
            # Every caller of a failed batch raises: a copy each, so threads never share a traceback.
            raise copy.copy(slot.error) from slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self, run: Callable[[list[P]], Sequence[R | BaseException]]) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            outcomes = run([s.params for s in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"group commit: {len(outcomes)} outcomes for {len(batch)} items")
        except BaseException as exc:  # handed to every caller of the batch, each raises it
            outcomes = [exc] * len(batch)
        for s, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                s.error = outcome
            else:
                s.result = outcome
        with self._lock:
            self.batches += 1
            self.items += len(batch)
            if self._pending:
                # Hand over: the oldest waiter leads the next batch on its own thread and connection.
                self._pending[0].lead = True
                self._pending[0].done.set()
            else:
                self._leading = False
        for s in batch:
            s.done.set()
