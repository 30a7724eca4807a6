"""Leased rate-limit tokens (escalations.intake.rate): pure, with a shared counter in a dict."""

from __future__ import annotations

import random
import secrets

from django.test import override_settings

from escalations.intake import views as intake_views
from escalations.intake.rate import LEASE_MAX, RateLeases, lease_cap
from tests.escalations.test_intake_pagerduty import REDIS_CACHE


class Counter:
    """The shared cache: one counter per (key, window), and how often it was asked."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, int], int] = {}
        self.calls = 0

    def take(self, key: str):
        def take(n: int, window: int) -> int:
            self.calls += 1
            self.values[(key, window)] = self.values.get((key, window), 0) + n
            return self.values[(key, window)]

        return take


def test_small_limits_are_counted_exactly():
    counter, leases = Counter(), RateLeases()
    admitted = [leases.admit("k", limit=3, period=60, now=120.0 + i, take=counter.take("k")) for i in range(5)]
    assert admitted == [True, True, True, False, False]
    assert counter.calls == 4  # the refusals after the first one cost no round trip
    assert leases.admit("k", limit=3, period=60, now=180.0, take=counter.take("k"))  # a new window


def test_never_more_than_the_limit_across_processes_and_few_round_trips():
    counter = Counter()
    processes = [RateLeases() for _ in range(4)]
    rng = random.Random(7)
    limit, admitted = 10_000, 0
    for i in range(12_000):
        admitted += rng.choice(processes).admit(
            "k", limit=limit, period=1, now=5.0 + i / 100_000, take=counter.take("k")
        )
    assert admitted <= limit
    # Stranded tokens: at most (lease cap - 1) per other process.
    assert admitted >= limit - 3 * (lease_cap(limit) - 1)
    assert counter.calls < 12_000 / 20


def test_leases_double_up_to_the_cap():
    counter, leases = Counter(), RateLeases()
    sizes = []

    def take(n: int, window: int) -> int:
        sizes.append(n)
        return counter.take("k")(n, window)

    for i in range(2_000):
        assert leases.admit("k", limit=1_000_000, period=1, now=10.0 + i / 10_000, take=take)
    assert sizes[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 256] and max(sizes) == LEASE_MAX
    assert lease_cap(600) == 9 and lease_cap(10) == 1 and lease_cap(10**9) == LEASE_MAX


def test_each_key_has_its_own_budget():
    counter, leases = Counter(), RateLeases()
    assert [leases.admit(k, limit=1, period=60, now=0.0, take=counter.take(k)) for k in "aab"] == [True, False, True]


def test_unspent_tokens_expire_with_the_window():
    counter, leases = Counter(), RateLeases()
    for i in range(10):
        leases.admit("k", limit=6400, period=1, now=1.0 + i / 100, take=counter.take("k"))
    assert counter.values[("k", 1)] > 10  # leased ahead
    assert leases.admit("k", limit=6400, period=1, now=2.5, take=counter.take("k"))
    assert counter.values[("k", 2)] == 1  # a new window starts with a lease of one


def test_at_most_max_keys_leases_are_kept():
    counter, leases = Counter(), RateLeases(max_keys=2)
    for key in ("a", "b", "c"):
        for _ in range(3):
            assert leases.admit(key, limit=6400, period=60, now=0.0, take=counter.take(key))
    assert sorted(leases._leases) == ["a", "b"]
    assert counter.values[("c", 0)] == 3  # counted one request at a time


@override_settings(BACKSTOP_INTAKE_RATE="640/min", CACHES=REDIS_CACHE)
def test_two_processes_sharing_redis_admit_no_more_than_the_limit(monkeypatch):
    key = secrets.token_hex(16)  # a fresh counter in the shared Redis
    processes = [RateLeases(), RateLeases()]
    admitted = 0
    for i in range(800):
        monkeypatch.setattr(intake_views, "rate_leases", processes[i % 2])
        admitted += not intake_views.throttle_exceeded(key, now=6000.0 + i / 100)
    assert 640 - (lease_cap(640) - 1) <= admitted <= 640
