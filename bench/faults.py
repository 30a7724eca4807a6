"""Infrastructure faults for the chaos run: a PostgreSQL outage, a Redis failover, a whole node killed.

`bench/chaos.py` keeps the page check; this module adds the faults and what is checked about them:

* `--pg-outage N`: the stack runs a private PostgreSQL cluster (bench/pgcluster.py) and stops it N
  times for 5-30 s (a crash: `pg_ctl -m immediate`, WAL recovery at the restart). Nothing restarts a
  worker, beat or web process: they must recover by themselves.
* `--sentinel`: the broker (and the cache) is a Redis master and replica behind three Sentinels, and
  each broker fault SIGKILLs the master mid-run, so the Sentinels promote the replica; the killed
  server comes back as a replica a few seconds later.
* `--nodes 2 --kill-node`: two complete nodes (web, dispatch worker, worker, beat: node "a" as
  ever, node "b" with `-b` names on ports of their own) share PostgreSQL and Redis; node b is
  SIGKILLed, every process at once, for good, mid-run.

`IntakeProbe` sends a PagerDuty event and asks /readyz every few hundred milliseconds throughout, as
a monitoring system and a load balancer would (a refused connection to a dead node is retried on the
other node, as a load balancer does). Afterwards `IntakeProbe.verdict` checks that every event answered
202 was stored and applied, that nothing answered 500 or 202 while the database was down, and that
/readyz answered 503 naming the database during an outage and 200 again after it.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from bench.harness import Stack

T = TypeVar("T")

NODE_B = "-b"  # suffix of node b's process names
NODE_B_PROCESSES = ("web", "worker1", "worker2", "beat")

ACTIONS = ("pg-outage", "failover", "rejoin", "kill-node")


def schedule_extend(
    events: list[tuple[float, str, str]],
    rng: random.Random,
    lo: float,
    hi: float,
    *,
    pg_outages: int,
    sentinel: bool,
    kill_node: bool,
    quick: bool,
) -> list[tuple[float, str, str]]:
    """The run's fault schedule with the infrastructure faults added. With Sentinel, every Redis
    kill/restart pair becomes a failover of whichever server is master then, and the rejoin of the old one."""
    out: list[tuple[float, str, str]] = []
    for at, action, target in events:
        if sentinel and target == "redis" and action == "kill":
            out.append((at, "failover", "redis"))
        elif sentinel and target == "redis":
            out.append((at + 3.0, "rejoin", "redis"))  # after the promotion (about 2 s)
        else:
            out.append((at, action, target))
    # PostgreSQL outages spread over the active part, 5-30 s each (5-12 s in the quick run), apart.
    span = (hi - lo) / max(pg_outages, 1)
    for n in range(pg_outages):
        length = rng.uniform(5.0, 12.0 if quick else 30.0)
        start_lo = lo + n * span
        at = rng.uniform(start_lo, max(start_lo, start_lo + span - length - 2.0))
        # One event: the restart runs on a timer, since the driver itself waits for the database.
        out.append((at, "pg-outage", f"{length:.1f}"))
    if kill_node:
        out.append((rng.uniform(lo + (hi - lo) * 0.3, lo + (hi - lo) * 0.6), "kill-node", "b"))
    out.sort()
    return out


def apply(stack: Stack, action: str, target: str) -> str | None:
    """Run one infrastructure fault; the text for the report (None: nothing to do)."""
    if action == "pg-outage":
        pg = stack.pg
        assert pg is not None, "--pg-outage needs the private cluster"
        length = float(target)
        pg.stop("immediate")

        def restart() -> None:
            started = time.monotonic()
            pg.start()
            stopped = pg.outages[-1]
            stack.event(
                f"PostgreSQL started again after {stopped[1] - stopped[0]:.1f}s down "
                f"(recovery {time.monotonic() - started:.1f}s)"
            )

        # Not on the driver's schedule: the driver blocks retrying its own writes while the server is down.
        timer = threading.Timer(length, restart)
        timer.daemon = True
        timer.start()
        return f"PostgreSQL stopped for {length:.1f}s (pg_ctl -m immediate, a crash)"
    if action == "failover":
        killed, promoted, took = stack.redis_failover()
        return f"SIGKILL Redis master {killed}; Sentinels promoted {promoted} after {took:.1f}s"
    if action == "rejoin":
        down = [name for name in stack.redis_ports if not stack.children[name].alive]
        if not down:
            return None
        stack.redis_rejoin(down[0])
        return f"{down[0]} restarted as a replica of {stack.redis_master()} (empty, resyncs)"
    if action == "kill-node":
        names = [name + NODE_B for name in NODE_B_PROCESSES if name + NODE_B in stack.children]
        # Every process at once, as a machine that loses power: SIGKILL each group without waiting.
        for name in names:
            stack.children[name].signal_group(signal.SIGKILL)
        for name in names:
            stack.kill(name, signal.SIGKILL)
        return f"node b killed for good (SIGKILL {', '.join(names)})"
    raise ValueError(action)


def node_b_start(stack: Stack, *, worker_concurrency: int) -> None:
    """Node b: the same processes as node a, on ports and with names of their own."""
    from config.queues import DISPATCH_CONCURRENCY, DISPATCH_QUEUES, WORKER_QUEUES

    stack.start_web(name="web" + NODE_B)
    stack.add_worker("worker1" + NODE_B, concurrency=DISPATCH_CONCURRENCY, queues=DISPATCH_QUEUES)
    stack.add_worker("worker2" + NODE_B, concurrency=worker_concurrency, queues=WORKER_QUEUES)
    stack.add_beat("beat" + NODE_B)
    for name in ("worker1", "worker2", "beat"):
        stack.start(name + NODE_B)


def retrying(fn: Callable[[], T], *, what: str, stack: Stack, timeout: float = 120.0) -> T:
    """`fn()` again until the database takes it, as a sender retries a 503: the driver opens and
    acknowledges incidents through the services, which fail while PostgreSQL is down."""
    from django.db import InterfaceError, OperationalError, connections

    deadline = time.monotonic() + timeout
    failed = 0
    while True:
        try:
            result = fn()
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            failed += 1
            connections.close_all()  # a broken connection is not reused
            time.sleep(0.5)
            continue
        if failed:
            stack.event(f"driver: {what} went through after {failed} failed attempts")
        return result


# --------------------------------------------------------------------------------------- probe


@dataclass
class ProbeRecord:
    at: float  # monotonic
    kind: str  # "event" or "readyz"
    url: str
    status: int  # 0: no answer
    key: str = ""
    body: str = ""


@dataclass
class IntakeProbe:
    """One thread: a PagerDuty event, then /readyz, every `interval` seconds, against the web nodes."""

    urls: list[str]
    routing_key: str
    interval: float = 0.4
    records: list[ProbeRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="intake-probe", daemon=True)
        self._n = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _post(self, url: str, key: str) -> tuple[int, str]:
        body = json.dumps(
            {
                "routing_key": self.routing_key,
                "event_action": "trigger",
                "dedup_key": key,
                "payload": {"summary": f"probe {key}", "source": "chaos", "severity": "warning"},
            }
        ).encode()
        request = Request(
            f"{url}/integrations/pagerduty/v2/enqueue", data=body, headers={"Content-Type": "application/json"}
        )
        return _call(request)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._n += 1
            key = f"probe-{self._n}"
            # A load balancer's rule: a node that refuses the connection is skipped, the next one tried.
            order = self.urls[self._n % len(self.urls) :] + self.urls[: self._n % len(self.urls)]
            for url in order:
                status, text = self._post(url, key)
                self.records.append(ProbeRecord(time.monotonic(), "event", url, status, key, text[:200]))
                if status != 0:
                    break
            for url in order:
                status, text = _call(Request(f"{url}/readyz"))
                self.records.append(ProbeRecord(time.monotonic(), "readyz", url, status, body=text[:300]))
                if status != 0:
                    break
            self._stop.wait(self.interval)

    def verdict(self, outages: list[tuple[float, float]]) -> tuple[list[str], list[str]]:
        """(summary lines, failures) for the report, from the database and what was answered."""
        from escalations.models import InboxEvent

        def down(at: float) -> bool:
            # A request answered inside an outage (a little slack at each end for requests in flight).
            return any(start + 0.3 <= at <= (end or float("inf")) - 0.3 for start, end in outages)

        events = [r for r in self.records if r.kind == "event" and r.status != 0]
        accepted = {r.key for r in events if r.status == 202}
        stored = dict(InboxEvent.objects.filter(dedup_key__in=list(accepted)).values_list("dedup_key", "processed_at"))
        by_status: dict[int, int] = {}
        for r in events:
            by_status[r.status] = by_status.get(r.status, 0) + 1
        failures: list[str] = []
        lost = sorted(accepted - set(stored))
        unapplied = sorted(k for k, at in stored.items() if at is None)
        if lost:
            failures.append(f"intake: {len(lost)} events answered 202 but not stored: {lost[:10]}")
        if unapplied:
            failures.append(f"intake: {len(unapplied)} stored events never applied: {unapplied[:10]}")
        bad = [r for r in events if r.status not in (202, 503)]
        if bad:
            failures.append(f"intake: {len(bad)} answers neither 202 nor 503: {[(r.status, r.body) for r in bad[:5]]}")
        no_retry_after = [r for r in events if r.status == 503 and "retry" not in r.body.lower()]
        if no_retry_after:
            failures.append(f"intake: {len(no_retry_after)} 503 answers without the retry message")
        during = [r for r in events if down(r.at)]
        accepted_down = [r for r in during if r.status == 202]
        if accepted_down:
            failures.append(f"intake: {len(accepted_down)} events answered 202 while PostgreSQL was down")
        readyz = [r for r in self.records if r.kind == "readyz" and r.status != 0]
        ready_down = [r for r in readyz if down(r.at)]
        ready_up_after = [r for r in readyz if outages and r.at > (outages[-1][1] or float("inf")) + 5]
        lines = [
            f"Intake probe: {len(events)} events sent, answers {dict(sorted(by_status.items()))}; "
            f"{len(accepted)} accepted, {len(stored)} stored, {len(stored) - len(unapplied)} applied",
        ]
        if outages:
            reported = [r for r in ready_down if r.status == 503 and "database" in r.body]
            lines.append(
                f"During PostgreSQL outages: {len(during)} events answered "
                f"({sum(1 for r in during if r.status == 503)} x 503, {len(accepted_down)} x 202); "
                f"/readyz asked {len(ready_down)} times, {len(reported)} x 503 naming the database"
            )
            if ready_down and len(reported) < len(ready_down) * 0.9:
                failures.append(
                    f"/readyz: only {len(reported)} of {len(ready_down)} answers during the outage were 503"
                )
            if not ready_down:
                failures.append("/readyz was never asked during an outage")
            if ready_up_after and ready_up_after[-1].status != 200:
                failures.append(f"/readyz did not recover after the outage: {ready_up_after[-1].body}")
        return lines, failures


def _call(request: Request) -> tuple[int, str]:
    try:
        with urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except HTTPError as exc:
        with contextlib.suppress(Exception):
            return exc.code, exc.read().decode(errors="replace")
        return exc.code, ""
    except (URLError, OSError):
        return 0, ""


def probe_seed() -> str:
    """A team without an escalation policy and its PagerDuty integration: the probe's events open
    incidents that page nobody, so they never touch the page count."""
    from escalations.models import Integration
    from rotations.models import Team

    team = Team.objects.create(name="Chaos probe", slug="chaos-probe")
    return Integration.objects.create(team=team, name="Chaos probe", kind=Integration.Kind.PAGERDUTY).key
