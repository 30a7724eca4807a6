"""Per-integration intake rate limit: a fixed-window budget shared by every web process.

The budget lives in one counter per (key, window) in the shared cache (Redis in production). A web
process does not count each request there: it leases a few tokens at a time (`INCRBY n`) and spends
them locally, doubling the lease while the key stays busy (up to `lease_cap`). A busy integration
then costs a handful of cache round trips per second per process instead of one per event, and one
that is over its limit costs none until the window ends.

The sum of all leases never exceeds the limit, so the limit is never exceeded. Tokens a process
leased but did not spend before the window ended are lost: the limit can refuse up to
(processes x (lease_cap - 1)) requests early, and lease_cap is at most 1/64 of the limit (1 for
small limits, i.e. exact counting). Only keys that could exist are counted, and at most `max_keys`
leases are kept per window (more keys are counted one request at a time), so junk keys cannot fill
memory or the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLeases", "lease_cap"]

LEASE_MAX = 256


def lease_cap(limit: int) -> int:
    """The largest lease for a limit: 1/64 of it (at most LEASE_MAX), at least 1."""
    return max(1, min(LEASE_MAX, limit // 64))


@dataclass
class _Lease:
    tokens: int = 0  # leased, not yet spent
    next: int = 1  # size of the next lease
    exhausted: bool = False  # the shared counter is at the limit: nothing more this window


class RateLeases:
    """This process's leases on the current window of each key. Thread-safe (gthread workers): the
    lock covers local bookkeeping only, never a cache round trip."""

    def __init__(self, max_keys: int = 4096) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._period: int | None = None
        self._window: int | None = None
        self._leases: dict[str, _Lease] = {}

    def admit(self, key: str, *, limit: int, period: int, now: float, take: Callable[[int, int], int]) -> bool:
        """Spend one token of `key`'s budget in the window containing `now` (seconds since the epoch).

        `take(n, window)` adds n to the shared counter of (key, window) and returns its new value; it
        is called only when this process has no token left. May raise whatever `take` raises.
        """
        window = int(now // period)
        with self._lock:
            if (window, period) != (self._window, self._period):
                self._window, self._period, self._leases = window, period, {}
            lease = self._leases.get(key)
            if lease is not None:
                if lease.tokens > 0:
                    lease.tokens -= 1
                    return True
                if lease.exhausted:
                    return False
                want = lease.next
            else:
                want = 1
        total = take(want, window)
        granted = max(0, min(want, limit - (total - want)))
        with self._lock:
            if (window, period) != (self._window, self._period):
                return granted > 0  # the window moved on meanwhile: spend one, keep nothing
            lease = self._leases.get(key)
            if lease is None:
                if len(self._leases) >= self.max_keys:
                    return granted > 0
                lease = self._leases[key] = _Lease()
            lease.tokens += max(0, granted - 1)
            lease.next = min(want * 2, lease_cap(limit))
            if granted < want:
                lease.exhausted = True
            return granted > 0

    def reset(self) -> None:
        """Forget every lease (tests; a process after fork starts empty anyway)."""
        with self._lock:
            self._window, self._period, self._leases = None, None, {}
