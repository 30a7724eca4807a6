#!/usr/bin/env python
"""Benchmark alert intake: PagerDuty Events API v2 triggers against gunicorn with production settings.

    .venv/bin/python bench/bench_intake.py [--seconds 10] [--rounds 3] [--concurrency 32] [--keys 500]
                                           [--client wrk|python] [--workers N] [--threads N]
                                           [--worker-class sync|gthread] [--layout production|single]
                                           [--celery-concurrency 1] [--skip-ceiling]

Creates a throwaway PostgreSQL database (dropped at the end), migrates, creates one PagerDuty
integration, starts gunicorn (config/gunicorn_conf.py, the production configuration, unless overridden;
config.settings.production, Redis broker and cache), the Celery workers of the production layout (a
dispatch worker on `escalations` and a worker on the other queues, prefork x 2 each; `--layout single`:
one worker on every queue with `--celery-concurrency`) and beat (the drain of the intake inbox runs on
the second worker), then fires trigger events that cycle through `--keys` dedup
keys over `--concurrency` connections. It prints two rates:

- HTTP: events accepted (202, stored in the inbox) per second, with p50/p99 latency;
- end to end: events fully applied (incident counted, Alert row written) per second — the events
  accepted during the run divided by the time from the start of the load until the inbox is empty;

with the server CPU per event of gunicorn, the Celery worker and PostgreSQL, and the same load
against /healthz as the ceiling of this machine and server without any intake work. The two loads
alternate for `--rounds` rounds on the same stack, so a change in the machine's other load shows in
both; it prints each round's ratio (PagerDuty events/s over /healthz requests/s) and the median, with
the intake's p99 and the PostgreSQL commits per accepted event (below 1 when concurrent requests
shared a statement: escalations.intake.group_commit).

The client shares the CPUs with the server. `--client wrk` (the default when `wrk` is installed:
`apt-get install wrk`) is a C event loop that costs a fraction of the Python thread pool
(`--client python`, keep-alive `requests` sessions), which would otherwise take a core of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import runpy
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def run_load(url: str, body_for, seconds: float, concurrency: int) -> dict:
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def worker(i: int) -> None:
        session = requests.Session()
        n = i
        while time.perf_counter() < stop:
            data = body_for(n)
            n += concurrency
            t0 = time.perf_counter()
            try:
                r = session.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=10)
                code = r.status_code
            except requests.RequestException:
                code = -1
            latencies[i].append(time.perf_counter() - t0)
            with lock:
                statuses[code] = statuses.get(code, 0) + 1
            if code not in (200, 202):
                errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = sorted(x for lat in latencies for x in lat)
    q = statistics.quantiles(flat, n=100) if len(flat) > 2 else [0] * 99
    return {
        "requests": len(flat),
        "per_second": len(flat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "errors": sum(errors),
        "statuses": statuses,
    }


WRK_SCRIPT = """
local keys, n = %(keys)d, 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  n = n + 1
  local k = n %% keys
  wrk.body = string.format(
    '{"routing_key": "%(key)s", "event_action": "trigger", "dedup_key": "bench-%%d", '
    .. '"payload": {"summary": "Bench alert %%d", "source": "bench", "severity": "error", '
    .. '"custom_details": {"n": %%d}}}', k, k, n)
  return wrk.format()
end
function done(summary, latency, requests)
  io.write(string.format("WRK p50=%%f p99=%%f\\n", latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(url: str, seconds: float, concurrency: int, script: str | None) -> dict:
    """wrk, one thread (the server needs the other CPU), `concurrency` keep-alive connections."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "10s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(
            script
            or "function done(summary, latency, requests)\n"
            "  io.write(string.format('WRK p50=%f p99=%f\\n', latency:percentile(50), latency:percentile(99)))\n"
            "end\n"
        )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run([*cmd, "-s", f.name, url], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p50, p99 = (float(x) for x in re.search(r"WRK p50=([\d.]+) p99=([\d.]+)", out).groups())
    n_bad = int(bad.group(1)) if bad else 0
    n_err = sum(int(x) for x in errors.groups()) if errors else 0
    return {
        "requests": total,
        "per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": p50 / 1000,  # wrk reports microseconds
        "p99_ms": p99 / 1000,
        "errors": n_bad + n_err,
        "statuses": {"non-2xx": n_bad, "socket errors": n_err},
        "client_cpu_ms": client_cpu * 1000 / max(total, 1),
    }


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (Linux /proc), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(gunicorn_pid: int, dsn: str, db: str) -> tuple[list[int], list[int]]:
    """gunicorn master and workers, and the PostgreSQL backends serving the bench database."""
    children = Path(f"/proc/{gunicorn_pid}/task/{gunicorn_pid}/children").read_text().split()
    with psycopg.connect(dsn) as conn:
        backends = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [db]
            )
        ]
    return [gunicorn_pid, *map(int, children)], backends


def _tree(pid: int) -> list[int]:
    """A process and its children (the Celery worker's pool)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *map(int, children)]


def measured(run, pids_of, until=None):
    """Run a load (and wait for `until`, e.g. the drain) and add the server's CPU ms per request:
    gunicorn, the Celery worker and the PostgreSQL backends (new backends count from zero)."""
    web, pg, celery = pids_of()
    w0, c0 = _cpu_seconds(web), _cpu_seconds(celery)
    p0 = {pid: _cpu_seconds([pid]) for pid in pg}
    m0 = _machine_cpu()
    result = run()
    m1 = _machine_cpu()
    if until is not None:
        result["until"] = until()
    _, pg2, _ = pids_of()
    n = max(result["requests"], 1)
    result["machine_busy"] = (m1[0] - m0[0]) / max(m1[1] - m0[1], 1)
    result["web_cpu_ms"] = (_cpu_seconds(web) - w0) * 1000 / n
    result["worker_cpu_ms"] = (_cpu_seconds(celery) - c0) * 1000 / n
    result["pg_cpu_ms"] = sum(_cpu_seconds([pid]) - p0.get(pid, 0.0) for pid in pg2) * 1000 / n
    return result


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat): the share of the machine in use,
    ours and everybody else's."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="each load, each round")
    parser.add_argument("--rounds", type=int, default=3, help="intake then /healthz, alternating")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: config/gunicorn_conf.py)")
    parser.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker (default: the config)")
    parser.add_argument("--worker-class", default=None, help="gunicorn worker class, e.g. sync (default: the config)")
    parser.add_argument("--skip-ceiling", action="store_true", help="do not measure /healthz")
    parser.add_argument("--keys", type=int, default=500, help="distinct dedup keys, repeated")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--layout", choices=("production", "single"), default="production", help="Celery workers")
    parser.add_argument("--celery-concurrency", type=int, default=1, help="with --layout single: pool processes")
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()

    args.port = args.port or free_port()
    db = f"backstop_bench_{secrets.token_hex(4)}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    base = args.admin_url.rsplit("/", 1)[0]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"{base}/{db}",
        "CELERY_BROKER_URL": args.redis,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "INTEGRATION_RATE": "1000000/s",  # measure intake, not the limiter's refusals
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "BACKSTOP_VAR_DIR": "/tmp/backstop-bench-var",
    }
    server = beat = None
    workers: list[subprocess.Popen] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    try:
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        key = (
            subprocess.run(
                [
                    PY,
                    "manage.py",
                    "shell",
                    "-c",
                    "from rotations.models import Team; from escalations.models import Integration;"
                    "t=Team.objects.create(name='Bench', slug='bench');"
                    "print(Integration.objects.create(team=t, name='bench', kind='pagerduty').key)",
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        # The production configuration, with the command line's overrides (gunicorn lets flags win).
        conf = runpy.run_path(str(ROOT / "config" / "gunicorn_conf.py"))
        gunicorn = {
            "worker-class": args.worker_class or conf["worker_class"],
            "workers": args.workers or conf["workers"],
            "threads": args.threads or conf["threads"],
            "keep-alive": conf["keepalive"],
        }
        cmd = [
            PY,
            "-m",
            "gunicorn",
            "-c",
            "config/gunicorn_conf.py",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--log-level",
            "warning",
            *(f"--{name}={value}" for name, value in gunicorn.items()),
        ]
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        celery = [PY, "-m", "celery", "-A", "config"]
        sys.path.insert(0, str(ROOT))
        from config.queues import DISPATCH_CONCURRENCY, DISPATCH_QUEUES, WORKER_CONCURRENCY, WORKER_QUEUES

        layout = (
            [("dispatch", DISPATCH_CONCURRENCY, DISPATCH_QUEUES), ("worker", WORKER_CONCURRENCY, WORKER_QUEUES)]
            if args.layout == "production"
            else [("worker", args.celery_concurrency, "celery,periodic,escalations,deliveries")]
        )
        workers = [
            subprocess.Popen(
                [
                    *celery,
                    "worker",
                    "-P",
                    "prefork",
                    "-c",
                    str(concurrency),
                    "-n",
                    f"{name}@%h",
                    "-l",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "-Q",
                    queues,
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            )
            for name, concurrency, queues in layout
        ]
        beat = subprocess.Popen(
            [*celery, "beat", "-l", "WARNING", "-s", str(scratch / "beat-schedule")],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")

        def event(n: int) -> str:
            return json.dumps(
                {
                    "routing_key": key,
                    "event_action": "trigger",
                    "dedup_key": f"bench-{n % args.keys}",
                    "payload": {
                        "summary": f"Bench alert {n % args.keys}",
                        "source": "bench",
                        "severity": "error",
                        "custom_details": {"n": n},
                    },
                }
            )

        dsn = f"{base}/{db}"

        def inbox_state() -> tuple[int, int]:
            with psycopg.connect(dsn) as conn:
                return conn.execute(
                    "SELECT coalesce(max(id), 0), count(*) FILTER (WHERE processed_at IS NULL)"
                    " FROM escalations_inboxevent"
                ).fetchone()

        def wait_drained(timeout: float = 300) -> float:
            deadline = time.perf_counter() + timeout
            while inbox_state()[1]:
                if time.perf_counter() > deadline:
                    raise RuntimeError("the inbox did not drain (is the Celery worker running?)")
                time.sleep(0.05)
            return time.perf_counter()

        # Warm-up: opens the incidents once so the timed run measures the steady state (dedup path).
        intake_url = f"{base_url}/integrations/pagerduty/v2/enqueue"
        run_load(intake_url, event, 2, args.concurrency)
        wait_drained()
        ceiling_url = f"{base_url}/healthz"

        def pids_of():
            web, pg = server_pids(server.pid, dsn, db)
            return web, pg, [pid for w in workers for pid in _tree(w.pid)]

        def commits() -> int:
            with psycopg.connect(dsn) as conn:
                return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [db]).fetchone()[0]

        # PostgreSQL 15 publishes a backend's counters when it has been idle a while (10 s at most).
        time.sleep(11)
        commits0 = commits()
        script = WRK_SCRIPT % {"keys": args.keys, "key": key}
        rounds: list[tuple[dict, dict | None, int, float]] = []
        for _ in range(args.rounds):
            first_id = inbox_state()[0]
            started = time.perf_counter()
            if args.client == "wrk":
                intake = measured(
                    lambda: run_wrk(intake_url, args.seconds, args.concurrency, script), pids_of, until=wait_drained
                )
            else:
                intake = measured(
                    lambda: run_load(intake_url, event, args.seconds, args.concurrency), pids_of, until=wait_drained
                )
            drained = intake.pop("until")
            accepted = inbox_state()[0] - first_id
            if args.skip_ceiling:
                ceiling = None
            elif args.client == "wrk":
                ceiling = measured(lambda: run_wrk(ceiling_url, args.seconds, args.concurrency, None), pids_of)
            else:
                ceiling = measured(lambda: run_load_get(ceiling_url, args.seconds, args.concurrency), pids_of)
            rounds.append((intake, ceiling, accepted, drained - started))
        time.sleep(11)
        # Every transaction of the database over the rounds, the drain's (a few hundred) included:
        # per event, how many commits the requests cost.
        per_event = (commits() - commits0) / max(sum(r[2] for r in rounds), 1)
        workers_text = (
            f"Celery dispatch worker -c {DISPATCH_CONCURRENCY} + worker -c {WORKER_CONCURRENCY} (production layout)"
            if args.layout == "production"
            else f"Celery worker -c {args.celery_concurrency}"
        )
        print(
            f"gunicorn {' '.join(f'--{k}={v}' for k, v in gunicorn.items())}, "
            f"{workers_text} and beat, client {args.client} with {args.concurrency} "
            f"connections, {args.keys} dedup keys, {args.rounds} rounds of {args.seconds:.0f}s each load, "
            f"{os.cpu_count()} CPUs (client and server share them), load average {os.getloadavg()[0]:.1f}"
        )
        ratios = []
        for n, (intake, ceiling, accepted, took) in enumerate(rounds, 1):
            print(f"round {n}:")
            for name, r in (("pagerduty trigger", intake), ("/healthz ceiling", ceiling)):
                if r is None:
                    continue
                print(
                    f"  {name:18s} {r['per_second']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                    f"server CPU/request: gunicorn {r['web_cpu_ms']:.2f} ms + workers {r['worker_cpu_ms']:.2f} ms + "
                    f"PostgreSQL {r['pg_cpu_ms']:.2f} ms"
                    + (f" (client wrk {r['client_cpu_ms']:.2f} ms)" if "client_cpu_ms" in r else "")
                    + f"  requests {r['requests']}  errors {r['errors']}  statuses {r['statuses']}  "
                    f"machine busy {r['machine_busy']:.0%}"
                )
            print(
                f"  end to end: {accepted} events accepted, all applied {took:.1f} s after the load began "
                f"({accepted / took:.0f} events/s applied)"
            )
            if ceiling is not None:
                ratios.append(intake["per_second"] / ceiling["per_second"])
                print(f"  ratio: {ratios[-1]:.0%} of /healthz")
        p99s = [r[0]["p99_ms"] for r in rounds]
        if ratios:
            ratio, p99 = statistics.median(ratios), statistics.median(p99s)
            met = ratio >= 0.5 and p99 < 50
            print(
                f"RESULT: PagerDuty intake at {ratio:.0%} of /healthz (median of {len(ratios)} rounds: "
                + ", ".join(f"{x:.0%}" for x in ratios)
                + f"), p99 {p99:.1f} ms (rounds: "
                + ", ".join(f"{x:.1f}" for x in p99s)
                + f") at {args.concurrency} connections; goal >= 50 % and p99 < 50 ms: {'MET' if met else 'MISSED'}"
            )
        print(f"PostgreSQL commits per accepted event, all rounds: {per_event:.2f} (drain included)")
        with psycopg.connect(dsn) as conn:
            incidents, alerts, counted = conn.execute(
                "SELECT (SELECT count(*) FROM escalations_incident), (SELECT count(*) FROM escalations_alert),"
                " (SELECT sum(alert_count) FROM escalations_incident)"
            ).fetchone()
        print(f"stored: {incidents} incidents counting {counted} alerts, {alerts} alert rows")
        if counted != alerts:
            print("MISMATCH: incident alert counts differ from the Alert rows")
            return 1
    finally:
        # Beat first, then the worker (its main process only: a warm shutdown lets a running drain
        # finish instead of killing the pool process mid-commit), then gunicorn; stragglers last.
        for child in (beat, *workers, server):
            if child is not None:
                child.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=30)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return 0


def run_load_get(url: str, seconds: float, concurrency: int) -> dict:
    """The same client loop against a trivial GET view."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        session = requests.Session()
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                code = session.get(url, timeout=10).status_code
            except requests.RequestException:
                code = -1
            latencies[i].append(time.perf_counter() - t0)
            with lock:
                statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = sorted(x for lat in latencies for x in lat)
    q = statistics.quantiles(flat, n=100)
    return {
        "requests": len(flat),
        "per_second": len(flat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "errors": sum(c for s, c in statuses.items() if s != 200),
        "statuses": statuses,
    }


if __name__ == "__main__":
    sys.exit(main())
