"""The drain kick: a debounced nudge that publishes one inbox drain right after events are accepted."""

from __future__ import annotations

import functools
import logging
import threading
import time

from celery import current_app
from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


# Task name (frozen: workers, queued messages and CELERY_TASK_ROUTES refer to it). Published by name:
# services never import task modules (see docs/architecture.md).
INBOX_DRAIN = "escalations.intake_tasks.inbox_drain"
KICK_KEY = "intake-inbox-kick"


class KickDebounce:
    """When this process last tried to claim a kick: it tries at most once per window."""

    def __init__(self) -> None:
        self._last = float("-inf")
        self._lock = threading.Lock()

    def due(self, now: float, window: float) -> bool:
        """True (and remembered) when the last try is at least `window` seconds before `now` (monotonic)."""
        with self._lock:
            if now - self._last < window:
                return False
            self._last = now
            return True

    def reset(self) -> None:
        with self._lock:
            self._last = float("-inf")


kick_debounce = KickDebounce()


def inbox_kick(*, now: float | None = None) -> None:
    """Make sure a drain runs after an event this process has just committed. Never raises.

    At most one try per debounce window (BACKSTOP_INBOX_KICK_MS) per process, and at most one drain
    task per window across all processes (`kick_claim`), due two windows later. An event whose try
    was skipped is covered: this process tried less than one window before, at t0, and that try
    either published a task due at t0 + 2 windows or found the claim of one made after t0 - 1 window,
    due after t0 + 1 window; either way after this event's commit, which came before this call. If
    that publish failed (broker down), the beat drain (every second) applies the event.
    """
    window_ms = settings.BACKSTOP_INBOX_KICK_MS
    if not kick_debounce.due(time.monotonic() if now is None else now, window_ms / 1000):
        return
    try:
        claimed = kick_claim(caches["default"])
    except Exception:  # the cache being down must not fail an accepted event
        logger.warning(
            "Intake inbox kick unavailable (cache error); the periodic drain will apply events", exc_info=True
        )
        return
    if claimed:
        inbox_kick_publish()


def kick_claim(backend: BaseCache) -> bool:
    """Claim this debounce window's kick (SET NX with a BACKSTOP_INBOX_KICK_MS lifetime): True for
    the one claim per window across every web process, which then publishes the drain task."""
    window_ms = settings.BACKSTOP_INBOX_KICK_MS
    client = redis_write_client(backend)
    if client is not None:
        return bool(client.set(backend.make_and_validate_key(KICK_KEY), b"1", nx=True, px=window_ms))
    return backend.add(KICK_KEY, 1, timeout=window_ms / 1000)


def inbox_kick_publish() -> None:
    """Publish the drain task, due in two debounce windows. Failures are logged, never raised."""
    try:
        # retry=False: a broker outage must not hold the request; the beat drain covers it.
        current_app.tasks[INBOX_DRAIN].apply_async(countdown=2 * settings.BACKSTOP_INBOX_KICK_MS / 1000, retry=False)
    except Exception:
        logger.warning("Intake inbox kick failed; the periodic drain will apply the event", exc_info=True)


def redis_write_client(backend: BaseCache):
    """The redis-py client of a Redis cache backend (None for other backends), made once per backend.

    Django builds a new `redis.Redis` on every cache call, and its constructor fills a table of ~170
    response callbacks: 0.3 ms of CPU, more than the round trip itself, on every intake request.
    """
    if not isinstance(backend, RedisCache):
        return None
    return _redis_client_of(backend._cache)


@functools.lru_cache(maxsize=16)
def _redis_client_of(cache_client):
    # Writes always go to the first server (Django's own rule for write=True).
    return cache_client.get_client(None, write=True)
