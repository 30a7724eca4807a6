#!/usr/bin/env python
"""Escalation lateness with many open incidents: how late after its due time is each step dispatched?

    .venv/bin/python bench/bench_escalation.py                 # 10,000 incidents, due over 120 s
    .venv/bin/python bench/bench_escalation.py --incidents 2000 --window 30 --profile
    .venv/bin/python bench/bench_escalation.py --background 90000   # 100,000 open incidents, 10,000 due

Real processes (bench/harness.py): its own PostgreSQL database and Redis, Celery workers and beat
(sweep every 1 s), production settings. The workers are laid out as in production (README, Deployment):
a dispatch worker on the `escalations` queue (prefork -c 2) and a worker for deliveries and the rest
(prefork -c 4 as docs/operations.md says, or `--worker-concurrency`); `--layout shared` runs `--workers`
workers (-c 2) that consume every queue instead.
The harness seeds N open incidents that already paged step 1 and whose step 2 falls due at a known
moment, spread evenly over the window (due times are recorded here, from the scenario, not read back).
Half of them (--eta-share) also get the wake-up message the engine publishes on commit
(`services.incidents_wake`); the rest rely on the beat sweep alone (what happens after a broker restart
lost the messages, or for steps due further ahead than a Celery ETA may wait), whose lookahead publishes
timed wake-ups for what falls due before its next tick. Step 2's delay is an hour, so every incident
stays open for the whole run and is dispatched exactly once in the window.

Lateness of a dispatch = (moment of dispatch) - (due time), measured two ways:
* `at`: the TimelineEvent "step_reached" `at`, i.e. the `now` the service ran with. A sweep passes one
  `now` for all its batches, so for sweep dispatches this is the sweep's start and understates.
* `actual`: the wall-clock moment the step's Page rows were built (Page.created_at).
`--background N` adds N more open incidents that do not fall due during the run (half triggered and
waiting for a step hours ahead, half acknowledged), seeded with COPY before the workers start: the
sweep and the wake-ups must cost what is due, not what is open. The sweep's queries are EXPLAINed
against the seeded table and their plans printed (an index scan on incident_due_idx, no Seq Scan).
The goal is p99 < 1 s. --profile then runs one sweep over --profile-incidents due incidents under cProfile
(workers and beat stopped) and prints what dominates and the queries per dispatched step.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import CpuMeter, Stack, machine_description, percentile
from config.queues import WORKER_CONCURRENCY


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--incidents", type=int, default=10_000)
    p.add_argument("--window", type=float, default=120.0, help="seconds over which the steps fall due")
    p.add_argument("--lead", type=float, default=20.0, help="seconds from the end of seeding to the first due")
    p.add_argument("--teams", type=int, default=50)
    p.add_argument(
        "--background", type=int, default=0, help="open incidents besides --incidents, none due during the run"
    )
    p.add_argument(
        "--layout",
        choices=("production", "shared"),
        default="production",
        help="production: dispatch worker + delivery worker; shared: --workers alike workers",
    )
    p.add_argument("--workers", type=int, default=2, help="with --layout shared: workers (prefork, concurrency 2)")
    p.add_argument(
        "--worker-concurrency", type=int, default=None, help="pool processes of the deliveries worker (default: 4)"
    )
    p.add_argument("--eta-share", type=float, default=0.5, help="share of incidents with an ETA message")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every process of the stack, e.g. WAKE_GRANULARITY_MS=100 (repeatable)",
    )
    p.add_argument("--profile", action="store_true", help="cProfile one sweep afterwards")
    p.add_argument("--profile-incidents", type=int, default=1000)
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    return p.parse_args(argv)


def seed_people(n_teams: int):
    """Teams of three, each with SMS-at-0 / voice-at-+60 s rules; policy: A, then B (1 h), no repeat."""
    from django.utils import timezone

    from escalations.models import EscalationPolicy, EscalationStep, EscalationTarget
    from escalations.policies.spec import policy_spec_build
    from portal.models import ContactMethod, NotificationRule, User
    from rotations.models import Membership, Team

    now = timezone.now()
    teams = Team.objects.bulk_create([Team(name=f"Bench {t}", slug=f"bench-{t}") for t in range(n_teams)])
    users = User.objects.bulk_create(
        [
            User(email=f"b{t}-{u}@bench.invalid", full_name=f"Bench {t}.{u}", password="!")
            for t in range(n_teams)
            for u in range(3)
        ]
    )
    Membership.objects.bulk_create([Membership(team=teams[i // 3], user=user) for i, user in enumerate(users)])
    methods = ContactMethod.objects.bulk_create(
        [
            ContactMethod(user=user, kind=kind, value=f"+1555{i:06d}", verified_at=now)
            for i, user in enumerate(users)
            for kind in ("sms", "voice")
        ]
    )
    NotificationRule.objects.bulk_create(
        [
            NotificationRule(user=m.user, contact_method=m, order=k % 2, delay=timedelta(seconds=60 * (k % 2)))
            for k, m in enumerate(methods)
        ]
    )
    specs = {}
    for t, team in enumerate(teams):
        policy = EscalationPolicy.objects.create(team=team, name="Bench", repeat=0)
        a = EscalationStep.objects.create(policy=policy, order=0, delay=timedelta(seconds=30))
        b = EscalationStep.objects.create(policy=policy, order=1, delay=timedelta(hours=1))
        EscalationTarget.objects.create(step=a, kind="user", user=users[3 * t])
        EscalationTarget.objects.create(step=b, kind="user", user=users[3 * t + 1])
        team.escalation_policy = policy
        team.save(update_fields=["escalation_policy"])
        specs[team.pk] = policy_spec_build(policy).to_json()
    return teams, specs


def seed_incidents(teams, specs, dues, *, prefix: str):
    """Open incidents that paged step 1 (30 s before their due) and wait for step 2 at `dues[i]`."""
    from escalations.models import Incident

    rows = []
    for i, due in enumerate(dues):
        team = teams[i % len(teams)]
        reached = due - timedelta(seconds=30)
        rows.append(
            Incident(
                team=team,
                policy_id=team.escalation_policy_id,
                policy_snapshot=specs[team.pk],
                title=f"{prefix} {i}",
                dedup_key=f"{prefix}-{i}",
                created_at=reached,
                status="triggered",
                cycle=0,
                step=0,
                loop=0,
                triggered_at=reached,
                next_action_at=due,
            )
        )
    created = Incident.objects.bulk_create(rows, batch_size=2000)
    return [inc.pk for inc in created]


def seed_background(teams, specs, n: int) -> float:
    """n open incidents that stay quiet for the run, written with COPY (100,000 in a few seconds):
    even ones triggered, step 2 due 2–3 hours ahead; odd ones acknowledged (no next action). Returns
    the seconds it took."""
    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    started = time.monotonic()
    now = timezone.now()
    columns = (
        "team_id, policy_id, policy_snapshot, title, details, severity, urgency, source, dedup_key, payload,"
        " links, alert_count, suppressed, status, created_at, updated_at, acknowledged_at, cycle, step, loop,"
        " next_action_at, triggered_at, exhausted"
    )
    snapshots = {pk: Jsonb(spec) for pk, spec in specs.items()}
    empty_dict, empty_list = Jsonb({}), Jsonb([])
    with transaction.atomic(), connection.cursor() as cursor:
        copy_sql = f"COPY escalations_incident ({columns}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for i in range(n):
                team = teams[i % len(teams)]
                opened = now - timedelta(seconds=60 + i % 3600)
                acked = i % 2 == 1
                copy.write_row(
                    (
                        team.pk,
                        team.escalation_policy_id,
                        snapshots[team.pk],
                        f"background {i}",
                        "",
                        "error",
                        "high",
                        "alert",
                        f"background-{i}",
                        empty_dict,
                        empty_list,
                        1,
                        False,
                        "acknowledged" if acked else "triggered",
                        opened,
                        now,
                        now if acked else None,
                        0,
                        0 if acked else 1,
                        0,
                        None if acked else now + timedelta(hours=2, seconds=i % 3600),
                        opened,
                        False,
                    )
                )
        cursor.execute("ANALYZE escalations_incident")
    return time.monotonic() - started


def explain_sweep() -> None:
    """EXPLAIN (ANALYZE) of the sweep's two queries on the seeded table, as the engine sends them."""
    from django.db import connection, transaction
    from django.utils import timezone

    from escalations.models import Incident

    now = timezone.now()
    queries = {
        "sweep (due, locked, oldest first)": Incident.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(next_action_at__lte=now)
        .exclude(status="resolved")
        .order_by("next_action_at")[:200],
        "lookahead (due in the next 2.5 s)": Incident.objects.filter(
            next_action_at__gt=now, next_action_at__lte=now + timedelta(seconds=2.5)
        )
        .exclude(status="resolved")
        .order_by()
        .values_list("pk", "next_action_at"),
    }
    open_count = Incident.objects.exclude(status="resolved").count()
    print(f"\nQuery plans with {open_count} open incidents:")
    for label, qs in queries.items():
        with transaction.atomic(), connection.cursor() as cursor:
            sql, params = qs.query.sql_with_params()  # FOR UPDATE compiles inside a transaction only
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        scan = "Seq Scan" if any("Seq Scan" in line for line in plan) else "no Seq Scan"
        print(f"  {label}: {scan}")
        for line in plan:
            print(f"    {line}")


def measure(due_by_id: dict[int, object]):
    """(lateness by `at`, lateness by actual page creation) per incident whose step 2 was reached."""
    from django.db.models import Min

    from escalations.models import Page, TimelineEvent

    at_by_id = dict(
        TimelineEvent.objects.filter(kind="step_reached", data__step=1, incident_id__in=list(due_by_id)).values_list(
            "incident_id", "at"
        )
    )
    built_by_id = dict(
        Page.objects.filter(step=1, incident_id__in=list(due_by_id))
        .values("incident_id")
        .annotate(first=Min("created_at"))
        .values_list("incident_id", "first")
    )
    by_at = {i: (at_by_id[i] - due).total_seconds() for i, due in due_by_id.items() if i in at_by_id}
    by_actual = {i: (built_by_id[i] - due).total_seconds() for i, due in due_by_id.items() if i in built_by_id}
    return by_at, by_actual


def delivery_lateness(due_by_id: dict[int, object]) -> dict[str, list[float]]:
    """Channel -> seconds from each step-2 page's due time to its claim for sending (`sent_at` is the
    moment its delivery batch started; bundled pages share their carrier's)."""
    from escalations.models import Page

    rows = Page.objects.filter(step=1, incident_id__in=list(due_by_id), sent_at__isnull=False).values_list(
        "channel", "due_at", "sent_at"
    )
    result: dict[str, list[float]] = {}
    for channel, due_at, sent_at in rows:
        result.setdefault(channel, []).append((sent_at - due_at).total_seconds())
    return result


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<22} n=0"
    return (
        f"{label:<22} n={len(values):>6}  p50 {percentile(values, 50) * 1000:8.0f} ms  "
        f"p99 {percentile(values, 99) * 1000:8.0f} ms  max {max(values) * 1000:8.0f} ms"
    )


def profile_sweep(stack: Stack, teams, specs, n: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from escalations.incidents import advance

    for name in [c for c in stack.children if c.startswith(("beat", "worker", "dispatch"))]:
        stack.kill(name)
    now = timezone.now()
    seed_incidents(teams, specs, [now - timedelta(milliseconds=1)] * n, prefix="profile")
    profiler = cProfile.Profile()
    started = time.perf_counter()
    # Count queries over the first 500 only: CaptureQueriesContext keeps at most 9000.
    with CaptureQueriesContext(connection) as queries:
        first = advance.escalations_sweep(now=timezone.now(), batch=100, max_batches=5)
    profiler.enable()
    advanced = first + advance.escalations_sweep(now=timezone.now(), batch=100, max_batches=10_000)
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(
        f"\nProfile: one sweep advanced {advanced} incidents in {elapsed:.2f}s "
        f"({elapsed / max(advanced, 1) * 1000:.1f} ms and {len(queries) / max(first, 1):.1f} queries "
        f"per dispatched step)"
    )
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats("escalations|portal|rotations", 18)
    print(out.getvalue())
    kinds: dict[str, int] = {}
    for q in queries.captured_queries:
        sql = q["sql"]
        head = " ".join(sql.split()[:4])[:60]
        kinds[head] = kinds.get(head, 0) + 1
    print("Queries by kind (first words):")
    for head, count in sorted(kinds.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {count:7d}  {head}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stack = Stack(label="bench", keep_dir=args.keep, env_overrides=dict(e.split("=", 1) for e in args.env))
    try:
        stack.create_database()
        stack.migrate()
        stack.start_redis()
        # Deliveries reach a (healthy) Twilio: the fake answers on loopback, so the paging that follows
        # each dispatch costs what it costs in production instead of failing fast and retrying.
        stack.start_fake_twilio(
            fail_rate=0.0, timeout_rate=0.0, hang_seconds=0.0, record=stack.dir / "twilio.jsonl", seed=1
        )
        stack.django_setup()
        from django.utils import timezone

        from escalations.incidents import publish

        teams, specs = seed_people(args.teams)
        stack.event(f"seeded {args.teams} teams")
        if args.background:
            took = seed_background(teams, specs, args.background)
            stack.event(f"seeded {args.background} background open incidents (COPY) in {took:.1f}s")
        if args.layout == "production":
            for child in stack.add_production_workers(worker_concurrency=args.worker_concurrency):
                child.start()
        else:
            for w in range(args.workers):
                stack.add_worker(f"worker{w + 1}").start()
        stack.add_beat("beat").start()

        # Due times are fixed from the scenario: evenly spread over the window after the lead.
        seed_started = time.monotonic()
        first_due = timezone.now() + timedelta(seconds=args.lead + 5 + args.incidents / 2000)
        step = args.window / max(args.incidents - 1, 1)
        dues = [first_due + timedelta(seconds=i * step) for i in range(args.incidents)]
        ids = seed_incidents(teams, specs, dues, prefix="bench")
        due_by_id = dict(zip(ids, dues, strict=True))
        eta_every = round(1 / args.eta_share) if args.eta_share > 0 else 0
        eta_ids = set(ids[::eta_every]) if eta_every else set()
        # Through the product's own publisher (bucketed ETAs, one message per bucket), as the
        # engine does on commit after step 1.
        publish.incidents_wake(wakeups=[(pk, due_by_id[pk]) for pk in ids if pk in eta_ids], now=timezone.now())
        stack.event(
            f"seeded {len(ids)} open incidents ({len(eta_ids)} with an ETA message) in "
            f"{time.monotonic() - seed_started:.1f}s; first due in "
            f"{(first_due - timezone.now()).total_seconds():.1f}s, last {args.window:.0f}s later"
        )
        if first_due <= timezone.now():
            print("ERROR: seeding overran the lead time; raise --lead", file=sys.stderr)
            return 2

        from escalations.models import TimelineEvent

        end = dues[-1] + timedelta(seconds=60)
        last_report = 0.0
        meter = CpuMeter(stack)
        while True:
            if meter.first is None and timezone.now() >= first_due:
                meter.start()
            meter.sample()
            done = TimelineEvent.objects.filter(kind="step_reached", data__step=1).count()
            now = timezone.now()
            if time.monotonic() - last_report > 15:
                stack.event(f"dispatched {done}, {sum(1 for d in dues if d <= now)} due so far")
                last_report = time.monotonic()
            if done >= len(ids) or now > end:
                break
            time.sleep(2)

        meter.sample()
        by_at, by_actual = measure(due_by_id)
        eta_at = [v for k, v in by_at.items() if k in eta_ids]
        sweep_at = [v for k, v in by_at.items() if k not in eta_ids]
        eta_act = [v for k, v in by_actual.items() if k in eta_ids]
        sweep_act = [v for k, v in by_actual.items() if k not in eta_ids]
        print("\n=== Escalation lateness benchmark ===")
        print(f"Machine: {machine_description()}")
        workers = (
            "dispatch worker (-Q escalations) -c 2 + worker (deliveries, celery, periodic) "
            f"-c {args.worker_concurrency or WORKER_CONCURRENCY}, prefork"
            if args.layout == "production"
            else f"{args.workers} worker(s) on every queue, prefork x 2 each"
        )
        print(
            f"{args.incidents} open incidents, step due times spread over {args.window:.0f}s "
            f"({args.incidents / args.window:.0f} dispatches/s), {workers}, "
            f"1 beat (sweep every 1 s), {args.teams} teams"
            + (
                f"; {args.background} more open incidents not due ({args.incidents + args.background} open)"
                if args.background
                else ""
            )
        )
        print(f"Dispatched: {len(by_at)}/{len(ids)}")
        print(summary("all, by `at`", list(by_at.values())))
        print(summary("all, actual", list(by_actual.values())))
        print(summary("ETA message, `at`", eta_at))
        print(summary("ETA message, actual", eta_act))
        print(summary("sweep only, `at`", sweep_at))
        print(summary("sweep only, actual", sweep_act))
        edges = (0.1, 0.3, 0.6, 1.0, 2.0)
        for label, values in (("ETA message", eta_act), ("sweep only", sweep_act)):
            lows = (float("-inf"), *edges)
            highs = (*edges, float("inf"))
            counts = [sum(1 for v in values if lo <= v < hi) for lo, hi in zip(lows, highs, strict=True)]
            names = [f"<{hi:g}s" for hi in edges] + [f">={edges[-1]:g}s"]
            print(
                f"{label + ' lateness histogram':<34}"
                + "  ".join(f"{name}: {count}" for name, count in zip(names, counts, strict=True))
            )
        sent = delivery_lateness(due_by_id)
        for channel, values in sorted(sent.items()):
            print(summary(f"delivery, {channel}", values) + "  (sent_at - due_at, step 2 pages sent)")
        if meter.first is not None:
            spent = meter.spent()
            print(
                f"CPU seconds from the first due to the end ({len(by_at)} steps dispatched): "
                + ", ".join(
                    f"{name} {spent[name]:.1f}"
                    for name in sorted(spent, key=lambda n: -spent[n])
                    if spent[name] >= 0.05
                )
                + f"; dispatch worker {spent.get('dispatch', 0.0) / max(len(by_at), 1) * 1000:.2f} ms per step"
            )
        from portal.models import JobRun

        for job in JobRun.objects.all():
            print(
                f"JobRun {job.name}: runs {job.runs}, last started {job.last_started_at}, last success "
                f"{job.last_success_at}, last error {job.last_error[:200]!r}"
            )
        explain_sweep()
        p99 = percentile(list(by_actual.values()), 99)
        print(f"Goal p99 < 1 s (actual, all): {'MET' if p99 < 1.0 else 'MISSED'} ({p99 * 1000:.0f} ms)")
        if args.profile:
            profile_sweep(stack, teams, specs, args.profile_incidents)
        return 0 if len(by_at) == len(ids) else 1
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
