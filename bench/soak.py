#!/usr/bin/env python
"""Soak: mixed load for a while, then is every process's memory flat and every log clean?

    .venv/bin/python bench/soak.py                 # 30 minutes: intake 200 events/s, 1,000 incidents
    .venv/bin/python bench/soak.py --quick         # CI size (tests/proof/test_soak_quick.py): 2 minutes
    .venv/bin/python bench/soak.py --minutes 60 --rate 300

Real processes (bench/harness.py) with production settings: its own PostgreSQL database and Redis, the
fake Twilio, gunicorn with config/gunicorn_conf.py, the production worker layout (dispatch worker +
worker, prefork x 2 each) and beat. Three loads run at once for `--minutes`:

* intake: PagerDuty events at `--rate` per second from 32 keep-alive sessions, paced on a fixed
  schedule, over `--incidents` dedup keys spread across one integration per team. Each key is
  triggered every round (a round = one event per key), except every tenth round, which resolves it;
  the next round opens a new incident. So 90-100 % of the keys have an open incident at any moment,
  each escalating (SMS at once, a second step after 30 s, a call at +60 s if still open), and the
  engine, the deliveries and the drain all work the whole time;
* escalation: the workers dispatch those steps and send every page to the fake Twilio;
* portal: a signed-in engineer of every team loads a portal page every second (Now, incidents, the
  schedule, one incident's page, in turn).

Every `--sample-every` seconds it reads the RSS and RssAnon (the process's own heap: what a leak
grows) of every process of the stack (`Stack.memory_kib`: gunicorn master and workers, Celery
workers and their pool processes, beat, Redis, the fake Twilio). After `--warmup` (default 20 % of
the run, at least 30 s) each process's RssAnon is compared with its own level just after warm-up
(median of the first three samples) at the end (median of the last three). The verdict is PASS when

* no process of the product grew by `--growth` % (default 10) or more, and by 2 MiB or more (the fake
  Twilio keeps every request it served, by design, and is shown, not judged), and none died;
* no log of any process has an ERROR, CRITICAL or Traceback line from the start of the load on;
* every HTTP request of the load succeeded (intake 202, portal 200) and intake kept its rate (95 %);
* the inbox drained and no page is left pending more than a minute past its due time.

It prints the figures and the verdict; exit status 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import PYTHON, ROOT, Stack, machine_description, percentile

ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")
NOT_JUDGED = ("twilio",)  # a test fake that keeps what it served
# A process must also grow by this much to fail: Redis's own heap is ~3 MiB, and its data (rate-limit
# windows, queued tasks) moves by a fraction of a MiB with the load, which is not a leak.
MIN_GROWTH_KIB = 2048


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=200.0, help="PagerDuty events per second")
    p.add_argument("--incidents", type=int, default=1000, help="dedup keys, i.e. incidents escalating at once")
    p.add_argument("--teams", type=int, default=50)
    p.add_argument("--warmup", type=float, default=None, help="seconds (default: 20 %% of the run, >= 30)")
    p.add_argument("--sample-every", type=float, default=5.0)
    p.add_argument("--growth", type=float, default=10.0, help="largest allowed memory growth, percent")
    p.add_argument("--quick", action="store_true", help="CI size: 2 minutes, 60 events/s, 200 incidents")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.rate, args.incidents, args.teams = 2.0, 60.0, 200, 20
    if args.warmup is None:
        args.warmup = max(30.0, args.minutes * 60 * 0.2)
    return args


@dataclass
class Traffic:
    """What one load sent: statuses, latencies (seconds) and how far behind its schedule it fell."""

    name: str
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    behind: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int, latency: float) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(latency)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def failed(self, ok: int) -> int:
        return sum(n for s, n in self.statuses.items() if s != ok)

    def line(self) -> str:
        lat = self.latencies
        return (
            f"{self.name}: {self.sent} requests, statuses {dict(sorted(self.statuses.items()))}, "
            f"p50 {percentile(lat, 50) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms, "
            f"max {max(lat, default=0) * 1000:.0f} ms"
        )


def seed(args) -> tuple[list[str], str]:
    """Teams of three with a two-step policy (bench_escalation's: SMS at once, a call at +60 s; step
    two 30 s later), one PagerDuty integration per team, and an engineer in every team with a
    session. Returns the integration keys and the session cookie value."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from bench.bench_escalation import seed_people
    from escalations.models import EscalationPolicy, Integration
    from portal.models import User
    from rotations.models import Membership

    teams, _ = seed_people(args.teams)
    EscalationPolicy.objects.update(repeat=None)  # repeat until acknowledged (or resolved)
    integrations = Integration.objects.bulk_create(
        [Integration(team=team, name="soak", kind=Integration.Kind.PAGERDUTY) for team in teams]
    )
    viewer = User.objects.create(email="soak@bench.invalid", full_name="Soak Viewer", password="!")
    Membership.objects.bulk_create([Membership(team=team, user=viewer) for team in teams])
    session = SessionStore()
    session[SESSION_KEY] = str(viewer.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = viewer.get_session_auth_hash()
    session.set_expiry(24 * 3600)
    session.save()
    return [i.key for i in integrations], session.session_key


def intake_load(url: str, keys: list[str], args, stop: threading.Event, traffic: Traffic) -> list[threading.Thread]:
    """Events on a fixed schedule (event n at start + n / rate), over 32 sessions."""
    counter = itertools.count()
    lock = threading.Lock()
    started = time.monotonic()
    senders = 32  # enough that a slow moment of the server does not cap the rate (8 did, at ~140/s)

    def body(n: int) -> str:
        k, round_ = n % args.incidents, n // args.incidents
        action = "resolve" if round_ % 10 == 9 else "trigger"
        event = {"routing_key": keys[k % len(keys)], "event_action": action, "dedup_key": f"soak-{k}"}
        if action == "trigger":
            event["payload"] = {
                "summary": f"Soak alert {k}",
                "source": f"host-{k % 37}",
                "severity": "error",
                "custom_details": {"n": n, "round": round_},
            }
        return json.dumps(event)

    def sender() -> None:
        session = requests.Session()
        while not stop.is_set():
            with lock:
                n = next(counter)
            due = started + n / args.rate
            wait = due - time.monotonic()
            if wait > 0:
                if stop.wait(wait):
                    return
            else:
                traffic.behind = max(traffic.behind, -wait)
            t0 = time.perf_counter()
            try:
                status = session.post(
                    url, data=body(n), headers={"Content-Type": "application/json"}, timeout=10
                ).status_code
            except requests.RequestException:
                status = -1
            traffic.record(status, time.perf_counter() - t0)

    return [threading.Thread(target=sender, daemon=True) for _ in range(senders)]


def portal_load(base: str, cookie: tuple[str, str], stop: threading.Event, traffic: Traffic) -> threading.Thread:
    from escalations.models import Incident

    def viewer() -> None:
        session = requests.Session()
        session.cookies.set(*cookie)
        incident_id = None
        for n in itertools.count():
            if stop.wait(1.0):
                return
            if n % 30 == 0 or incident_id is None:
                incident_id = Incident.objects.order_by("-id").values_list("id", flat=True).first()
            paths = ["/", "/incidents/", "/schedule/", f"/incidents/{incident_id}/" if incident_id else "/"]
            t0 = time.perf_counter()
            try:
                response = session.get(base + paths[n % len(paths)], timeout=20, allow_redirects=False)
                status = response.status_code
            except requests.RequestException:
                status = -1
            traffic.record(status, time.perf_counter() - t0)

    return threading.Thread(target=viewer, daemon=True)


def memory_verdict(samples: list[tuple[float, dict]], warmup: float, growth: float) -> tuple[list[str], list[str]]:
    """Lines of the memory table, and the failures (process, growth)."""
    after = [(t, m) for t, m in samples if t >= warmup]
    if len(after) < 6:
        return ["too few samples after the warm-up to judge memory (run longer)"], ["memory: not enough samples"]
    first, last = after[:3], after[-3:]
    procs = sorted({p for _, m in samples for p in m})
    lines, failures = [], []
    lines.append(
        f"{'process':<12} {'pid':>7}  {'RSS start':>10} {'RSS end':>10}  {'anon start':>10} {'anon end':>10}  growth"
    )
    for proc in procs:
        if not all(proc in m for _, m in first + last):
            seen = [t for t, m in samples if proc in m]
            lines.append(f"{proc[0]:<12} {proc[1]:>7}  lived {min(seen):.0f}-{max(seen):.0f} s (not through the run)")
            continue
        rss0 = statistics.median(m[proc][0] for _, m in first)
        rss1 = statistics.median(m[proc][0] for _, m in last)
        anon0 = statistics.median(m[proc][1] for _, m in first)
        anon1 = statistics.median(m[proc][1] for _, m in last)
        change = (anon1 / anon0 - 1) * 100 if anon0 else 0.0
        judged = proc[0] not in NOT_JUDGED
        flag = "  <-- grew" if judged and change >= growth and anon1 - anon0 >= MIN_GROWTH_KIB else ""
        lines.append(
            f"{proc[0]:<12} {proc[1]:>7}  {rss0 / 1024:8.1f} M {rss1 / 1024:8.1f} M  {anon0 / 1024:8.1f} M "
            f"{anon1 / 1024:8.1f} M  {change:+5.1f} %{'' if judged else ' (fake, not judged)'}{flag}"
        )
        if judged and change >= growth and anon1 - anon0 >= MIN_GROWTH_KIB:
            failures.append(f"memory: {proc[0]} pid {proc[1]} grew {change:+.1f} % after warm-up")
    return lines, failures


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_errors(stack: Stack, offsets: dict[str, int]) -> dict[str, list[str]]:
    """ERROR/CRITICAL/Traceback lines each child logged after its offset."""
    found: dict[str, list[str]] = {}
    for name, child in stack.children.items():
        try:
            with open(child.log_path, "rb") as fh:
                fh.seek(offsets.get(name, 0))
                text = fh.read().decode(errors="replace")
        except OSError:
            continue
        bad = [line for line in text.splitlines() if ERROR_LINE.search(line)]
        if bad:
            found[name] = bad
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    duration = args.minutes * 60
    stack = Stack(label="soak", keep_dir=args.keep)
    failures: list[str] = []
    try:
        stack.create_database()
        stack.migrate()
        stack.start_redis()
        stack.start_fake_twilio(
            fail_rate=0.0, timeout_rate=0.0, hang_seconds=0.0, record=stack.dir / "twilio.jsonl", seed=1
        )
        stack.django_setup()
        from django.conf import settings
        from django.db.models import Count
        from django.utils import timezone

        from escalations.models import InboxEvent, Incident, Page

        # Production settings serve hashed static files from the manifest, as after a deploy.
        subprocess.run(
            [PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=stack.env(), check=True
        )
        keys, session_key = seed(args)
        stack.event(f"seeded {args.teams} teams, {len(keys)} integrations, a portal viewer")
        stack.start_web(production_conf=True)
        for child in stack.add_production_workers():
            child.start()
        stack.add_beat("beat").start()
        stack.wait_ready()
        stack.event("stack ready: gunicorn (config/gunicorn_conf.py), dispatch worker + worker, beat")

        stop = threading.Event()
        intake, portal = Traffic("intake (PagerDuty, 202)"), Traffic("portal pages (200)")
        threads = intake_load(f"{stack.web_url}/integrations/pagerduty/v2/enqueue", keys, args, stop, intake)
        threads.append(portal_load(stack.web_url, (settings.SESSION_COOKIE_NAME, session_key), stop, portal))
        # Logs are judged from here on: start-up noise (a /readyz 503 before beat's first tick) is not the soak's.
        offsets = {name: _size(child.log_path) for name, child in stack.children.items()}
        started = time.monotonic()
        for t in threads:
            t.start()
        samples: list[tuple[float, dict]] = []
        last_report = 0.0
        while (elapsed := time.monotonic() - started) < duration:
            samples.append((elapsed, stack.memory_kib()))
            dead = [c.name for c in stack.children.values() if not c.alive]
            if dead:
                failures.append(f"processes exited: {', '.join(dead)}")
                break
            if elapsed - last_report >= 60 or not last_report:
                last_report = elapsed or 1e-9
                open_now = Incident.objects.exclude(status="resolved").count()
                total = sum(m[0] for m in samples[-1][1].values()) / 1024
                stack.event(
                    f"{elapsed:5.0f} s: intake {intake.sent} sent ({intake.failed(202)} failed), "
                    f"portal {portal.sent} ({portal.failed(200)} failed), {open_now} open incidents, "
                    f"{Page.objects.filter(status='sent').count()} pages sent, stack RSS {total:.0f} MiB"
                )
            time.sleep(max(0.0, min(args.sample_every, duration - elapsed)))
        stop.set()
        for t in threads:
            t.join(15)
        load_seconds = time.monotonic() - started
        stack.event("load stopped; waiting for the inbox to drain")
        deadline = time.monotonic() + 60
        while InboxEvent.objects.filter(processed_at__isnull=True).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        pending = InboxEvent.objects.filter(processed_at__isnull=True).count()
        overdue = Page.objects.filter(
            status__in=["pending", "sending"], due_at__lt=timezone.now() - timedelta(seconds=60)
        ).count()
        sent_pages = list(
            Page.objects.filter(status="sent", sent_at__isnull=False).values_list("due_at", "sent_at", "channel")
        )
        incidents = Incident.objects.count()
        by_status = dict(Page.objects.values_list("status").annotate(n=Count("id")).order_by())
        errors = log_errors(stack, offsets)  # before the stack stops: shutdown noise is not the soak's

        print("\n=== Soak ===")
        print(f"Machine: {machine_description()}")
        print(
            f"{args.minutes:g} min of load ({load_seconds:.0f} s): intake {args.rate:g} events/s over "
            f"{args.incidents} dedup keys and {args.teams} integrations, portal 1 page/s; warm-up "
            f"{args.warmup:.0f} s; memory sampled every {args.sample_every:g} s ({len(samples)} samples)"
        )
        achieved = intake.sent / load_seconds
        print(intake.line() + f"; {achieved:.1f} events/s achieved, at most {intake.behind:.2f} s behind schedule")
        print(portal.line())
        print(
            f"incidents opened {incidents}; inbox pending after the load {pending}; pages by status {by_status}; "
            f"pages overdue > 60 s {overdue}"
        )
        lateness = {}
        for due, sent, channel in sent_pages:
            lateness.setdefault(channel, []).append((sent - due).total_seconds())
        for channel, values in sorted(lateness.items()):
            print(
                f"pages {channel}: {len(values)} sent, lateness (sent_at - due_at) p50 "
                f"{percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms"
            )
        lines, memory_failures = memory_verdict(samples, args.warmup, args.growth)
        print("\nMemory after warm-up (RssAnon judged):")
        for line in lines:
            print("  " + line)
        failures += memory_failures
        if intake.failed(202):
            failures.append(f"intake: {intake.failed(202)} requests not accepted")
        if portal.failed(200):
            failures.append(f"portal: {portal.failed(200)} pages not 200")
        if achieved < 0.95 * args.rate:
            failures.append(f"intake: {achieved:.1f} events/s, below 95 % of {args.rate:g}")
        if pending:
            failures.append(f"inbox: {pending} events not applied a minute after the load")
        if overdue:
            failures.append(f"pages: {overdue} pending more than a minute past their due time")
        print("\nError logs:" + (" none" if not errors else ""))
        for name, bad in errors.items():
            print(f"  {name}: {len(bad)} lines, first: {bad[0][:300]}")
            failures.append(f"log: {name} has {len(bad)} ERROR/CRITICAL/Traceback lines")
        print("\nVERDICT: " + ("PASS" if not failures else "FAIL"))
        for failure in failures:
            print(f"  - {failure}")
        return 0 if not failures else 1
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
