"""When a failed page is tried again, and when the person is reached another way as well.

A pager's send is retried within seconds, because the person is waiting for it: a provider error
(HTTP 5xx, 429, connection refused; nothing was sent) brings the page back after about 1 s, then 2 s,
4 s and 8 s, then every 8 s, up to `BACKSTOP_PAGE_MAX_ATTEMPTS` attempts (10: a minute of trying)
before the page fails and the person's next rule takes over. Each delay is spread by +/-25 % at random
so that the pages a provider blip failed together do not all come back in the same instant.

Retrying one channel is not enough while the provider has a bad day: once a page has failed
`BACKSTOP_PAGE_FAILOVER_AFTER` times (or its outcome is unknown and the provider does not show the
message), the person's next notification rule on *another* contact method is made due now, in
parallel. The failing page keeps retrying; the person may get both, never the same one twice.

Retries never touch the escalation queue: a page due again is a delivery message with an ETA on
the `deliveries` queue (and the page-reconcile sweep finds it if that message is lost).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings

RETRY_FIRST = timedelta(seconds=1)
RETRY_MAX = timedelta(seconds=8)
RETRY_JITTER = 0.25


def retry_delay(attempts: int, *, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait before the next attempt of a page whose `attempts`-th attempt just failed.
    `rand` returns a float in [0, 1) (tests pass their own)."""
    doublings = min(max(attempts - 1, 0), 16)  # bounded: 2**attempts of a large count would overflow
    base = min(RETRY_FIRST * (2**doublings), RETRY_MAX)
    return base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * rand())


def failover_now(attempts: int) -> bool:
    """After this failed attempt, reach the person by their next contact method as well. True once,
    at the threshold, so the timeline says it once (a later attempt finds the next page sent anyway)."""
    return attempts == settings.BACKSTOP_PAGE_FAILOVER_AFTER


def give_up(attempts: int) -> bool:
    return attempts >= settings.BACKSTOP_PAGE_MAX_ATTEMPTS
