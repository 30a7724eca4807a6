"""Process orchestration shared by the chaos run and the benchmarks.

A `Stack` starts REAL processes on 127.0.0.1 only, each in its own process group with its log in a
scratch directory: its own PostgreSQL database on the running server (`backstop_<label>_<random>`,
dropped at the end), its own `redis-server` on a free port (no persistence, so a restart really loses
the queue), the fake Twilio API, gunicorn, Celery workers and beats, all with production settings.

`Stack.django_setup()` points the calling process at the same database and broker, so a benchmark can
seed through the ORM and call services directly. `Stack.close()` is idempotent and runs from
`finally`, `atexit` and SIGTERM/SIGINT: every child's process group is killed and the database dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from bench.pgcluster import PgCluster

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
CELERY = str(VENV_BIN / "celery")
GUNICORN = str(VENV_BIN / "gunicorn")
SENTINEL_MASTER = "backstop"
ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def machine_description() -> str:
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    redis_v = _first_line([shutil.which("redis-server") or "redis-server", "--version"])
    pg_v = ""
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            pg_v = conn.execute("SHOW server_version").fetchone()[0]
    load = ""
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}; {platform.node()}; nproc {os.cpu_count()}, "
        f"{mem_kb / 1024 / 1024:.1f} GiB RAM, load avg {load}; Python {platform.python_version()}, "
        f"PostgreSQL {pg_v}, {redis_v.split(' sha=')[0]}"
    )


def _first_line(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=5).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


class CpuMeter:
    """CPU used by a stack's processes (`Stack.cpu_seconds`) between `start()` and the last `sample()`.
    A process that appears later counts from zero."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.first: dict[str, float] | None = None
        self.last: dict[str, float] = {}

    def start(self) -> None:
        self.first = self.stack.cpu_seconds()
        self.last = dict(self.first)

    def sample(self) -> None:
        if self.first is not None:
            self.last.update(self.stack.cpu_seconds())

    def spent(self) -> dict[str, float]:
        return {name: value - (self.first or {}).get(name, 0.0) for name, value in self.last.items()}


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> Child:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it; closed in stop()
        log.write(f"\n==== start {self.starts + 1} at {datetime.now(UTC).isoformat()}\n".encode())
        log.flush()
        # Own session = own process group: a SIGKILL of the group takes the prefork children too.
        self.popen = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._log = log
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, *, sig: int = signal.SIGTERM, grace: float = 8.0) -> None:
        """Signal the whole process group, wait up to `grace`, then SIGKILL what is left."""
        if self.popen is None:
            return
        self.signal_group(sig)
        if sig != signal.SIGKILL:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        self.signal_group(signal.SIGKILL)  # stragglers (pool children) of the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        with contextlib.suppress(Exception):
            self._log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    label: str
    keep_dir: bool = False
    env_overrides: dict[str, str] = field(default_factory=dict)
    verbose: bool = True
    # A PostgreSQL cluster of its own (bench/pgcluster.py) instead of a database on the shared server,
    # so the run may stop it; and the broker as a Redis master, a replica and three Sentinels.
    private_pg: bool = False
    sentinel: bool = False

    def __post_init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"backstop-{self.label}-"))
        self.db_name = f"backstop_{self.label}_{secrets.token_hex(4)}"
        self.redis_port = free_port()
        self.web_port = free_port()
        self.twilio_port = free_port()
        self.web_ports: dict[str, int] = {}
        self.children: dict[str, Child] = {}
        # Variables for one child only (bench/observe.py: each process's metrics directory and port).
        self.child_env: dict[str, dict[str, str]] = {}
        self.events: list[tuple[float, str]] = []
        self.t0 = time.monotonic()
        self.secret_key = "chaos-" + secrets.token_hex(24)
        self._db_created = False
        self._closed = False
        self._postmaster: int | None = None
        self.pg: PgCluster | None = PgCluster(self.dir / "pg", free_port()) if self.private_pg else None
        # Sentinel mode: two Redis servers (either may be the master) and three Sentinels, quorum 2.
        self.redis_ports = {"redis": self.redis_port, "redis-b": free_port()} if self.sentinel else {}
        self.sentinel_ports = [free_port() for _ in range(3)] if self.sentinel else []
        # Broker outages, (down, back) monotonic: a failover until the promotion, a plain kill until the restart.
        self.broker_outages: list[tuple[float, float]] = []
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    # --- bookkeeping ---------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        raise SystemExit(128 + signum)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def outage_windows(self) -> list[tuple[float, float]]:
        """PostgreSQL and broker outages so far, as (down, back) epoch seconds (back: now if still down)."""
        to_epoch = time.time() - time.monotonic()
        now = time.monotonic()
        windows = list(self.pg.outages if self.pg else []) + self.broker_outages
        return sorted((down + to_epoch, (back or now) + to_epoch) for down, back in windows)

    def event(self, text: str) -> None:
        self.events.append((self.elapsed(), text))
        if self.verbose:
            print(f"[{self.elapsed():7.1f}s] {text}", flush=True)

    # --- environment -----------------------------------------------------------------------------
    @property
    def admin_url(self) -> str:
        return self.pg.admin_url if self.pg else ADMIN_URL

    @property
    def database_url(self) -> str:
        return self.pg.url(self.db_name) if self.pg else f"postgres://postgres@127.0.0.1:5432/{self.db_name}"

    @property
    def broker_url(self) -> str:
        if self.sentinel:
            # kombu's form: every Sentinel, `;`-separated; the master's name is a transport option.
            return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports) + "/0"
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def twilio_url(self) -> str:
        return f"http://127.0.0.1:{self.twilio_port}"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER")}
        env = {
            **keep,
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": self.database_url,
            "CONN_MAX_AGE": "60",
            "CELERY_BROKER_URL": self.broker_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "PUBLIC_BASE_URL": self.web_url,
            "TWILIO_ACCOUNT_SID": "AC" + "c" * 32,
            "TWILIO_AUTH_TOKEN": "chaos-auth-token",
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_API_BASE_URL": self.twilio_url,
            "TWILIO_HTTP_TIMEOUT": "3",
            # No bundling in these runs: every page is its own message.
            "PAGE_THROTTLE_SMS_COUNT": "100000",
            "PAGE_THROTTLE_VOICE_COUNT": "100000",
            "PAGE_THROTTLE_EMAIL_COUNT": "100000",
            "SWEEP_INTERVAL_SECONDS": "1",
            "PAGE_STUCK_AFTER_SECONDS": "15",
            "BACKSTOP_VAR_DIR": str(self.dir),
            "LOG_LEVEL": "WARNING",
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            **({"REDIS_SENTINEL_MASTER": SENTINEL_MASTER} if self.sentinel else {}),
        }
        env.update(self.env_overrides)
        return env

    # --- database ------------------------------------------------------------------------------
    def create_database(self) -> None:
        import psycopg

        if self.pg is not None:
            self.pg.init()
            self.pg.start()
            self.event(f"private PostgreSQL cluster on port {self.pg.port} ({self.pg.data})")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True
        self.event(f"created database {self.db_name}")

    def migrate(self) -> None:
        started = time.monotonic()
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env(), check=True)
        self.event(f"migrated ({time.monotonic() - started:.1f}s)")

    def drop_database(self) -> None:
        if not self._db_created:
            return
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self.pg is not None:
            self.pg.destroy()  # the whole cluster goes, database and all
            self._db_created = False
            return
        import psycopg

        try:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self._db_created = False
        except Exception as exc:  # reported, never hidden: a leftover database needs a hand
            print(f"WARNING: could not drop database {self.db_name}: {exc}", file=sys.stderr)

    def django_setup(self) -> None:
        """Point this process at the stack (call once, before importing models)."""
        os.environ.update(self.env())
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    # --- children ------------------------------------------------------------------------------
    def _child(self, name: str, argv: list[str]) -> Child:
        child = self.children.get(name)
        if child is None:
            env = {**self.env(), **self.child_env.get(name, {})}
            child = Child(name=name, argv=argv, env=env, log_path=self.dir / f"{name}.log")
            self.children[name] = child
        return child

    def start(self, name: str) -> Child:
        child = self.children[name]
        child.start()
        return child

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.children[name].stop(sig=sig)

    def start_redis(self) -> Child:
        if self.sentinel:
            return self.start_redis_sentinel()
        child = self._child(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.dir),
            ],
        )
        child.start()
        _wait(lambda: _port_open(self.redis_port), 15, "redis-server to listen", child)
        return child

    # --- Redis behind Sentinel -------------------------------------------------------------------
    def _redis_server(self, name: str, replica_of: int | None) -> Child:
        """A Redis server of the Sentinel set; its argv is rebuilt at every start, since a restarted
        former master must come back as a replica of whoever is master now."""
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.redis_ports[name]),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--dbfilename",
            f"{name}.rdb",
            *(["--replicaof", "127.0.0.1", str(replica_of)] if replica_of else []),
        ]
        child = self._child(name, argv)
        child.argv = argv
        child.start()
        _wait(lambda: _port_open(self.redis_ports[name]), 15, f"{name} to listen", child)
        return child

    def start_redis_sentinel(self) -> Child:
        """Master `redis`, replica `redis-b`, Sentinels `sentinel1..3` (quorum 2, a master is down after
        1 s without an answer). Sentinel rewrites its config file, so each gets one of its own."""
        master = self._redis_server("redis", None)
        self._redis_server("redis-b", self.redis_port)
        for n, port in enumerate(self.sentinel_ports, start=1):
            conf = self.dir / f"sentinel{n}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
                f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {self.redis_port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} 10000\n"
                f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
            )
            child = self._child(f"sentinel{n}", [shutil.which("redis-sentinel") or "redis-sentinel", str(conf)])
            child.start()
            _wait(lambda port=port: _port_open(port), 15, f"sentinel{n} to listen", child)
        _wait(lambda: self._sentinels_agree(), 30, "the Sentinels to see the master and its replica")
        return master

    def _sentinel_query(self, *command: str):
        import redis

        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
                try:
                    return client.execute_command(*command)
                finally:
                    client.close()
        return None

    def _sentinels_agree(self) -> bool:
        replicas = self._sentinel_query("SENTINEL", "REPLICAS", SENTINEL_MASTER) or []
        return bool(replicas) and self.redis_master() is not None

    def redis_master(self) -> str | None:
        """The child name of the server the Sentinels call master now."""
        addr = self._sentinel_query("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER)
        if not addr:
            return None
        return next((name for name, port in self.redis_ports.items() if port == int(addr[1])), None)

    def redis_failover(self, *, timeout: float = 30.0) -> tuple[str, str | None, float]:
        """SIGKILL the current master and wait for the Sentinels to promote the replica:
        (killed, promoted, seconds until the Sentinels named the new master)."""
        old = self.redis_master() or "redis"
        self.kill(old, signal.SIGKILL)
        killed_at = time.monotonic()
        new = None
        while time.monotonic() - killed_at < timeout:
            new = self.redis_master()
            if new and new != old:
                break
            time.sleep(0.2)
        self.broker_outages.append((killed_at, time.monotonic()))
        return old, new, time.monotonic() - killed_at

    def redis_rejoin(self, name: str) -> None:
        """Restart a former master as a replica of the current one (empty, it resyncs)."""
        master = self.redis_master()
        self._redis_server(name, self.redis_ports[master] if master and master != name else None)

    def start_fake_twilio(
        self, *, fail_rate: float, timeout_rate: float, hang_seconds: float, record: Path, seed: int
    ) -> Child:
        child = self._child(
            "twilio",
            [
                PYTHON,
                "-m",
                "tests.fakes.fake_twilio",
                "--port",
                str(self.twilio_port),
                "--fail-rate",
                str(fail_rate),
                "--timeout-rate",
                str(timeout_rate),
                "--hang-seconds",
                str(hang_seconds),
                "--seed",
                str(seed),
                "--record",
                str(record),
            ],
        )
        child.start()
        _wait(lambda: _port_open(self.twilio_port), 20, "the fake Twilio to listen", child)
        return child

    def start_web(self, workers: int = 1, name: str = "web", *, production_conf: bool = False) -> Child:
        """gunicorn with `workers` sync workers, or with `production_conf` as production runs it
        (config/gunicorn_conf.py: gthread workers, threads, keep-alive; `workers` ignored). A second
        node's web (any other `name`) listens on a port of its own."""
        port = self.web_ports.setdefault(name, self.web_port if name == "web" else free_port())
        child = self._child(
            name,
            [
                GUNICORN,
                *(["-c", "config/gunicorn_conf.py"] if production_conf else []),
                "config.wsgi",
                *([] if production_conf else ["--workers", str(workers)]),
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "3",
            ],
        )
        child.start()
        _wait(lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), 30, f"{name} /healthz", child)
        return child

    def web_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.web_ports.values()]

    def add_worker(self, name: str, concurrency: int = 2, queues: str | None = None) -> Child:
        """A prefork worker; `queues` as for -Q (None: every queue)."""
        return self._child(
            name,
            [
                CELERY,
                "-A",
                "config",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "-l",
                os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
                "--without-gossip",
                "--without-mingle",
                *(["-Q", queues] if queues else []),
            ],
        )

    def add_production_workers(
        self, dispatch: str = "dispatch", worker: str = "worker", *, worker_concurrency: int | None = None
    ) -> tuple[Child, Child]:
        """The production layout (docs/operations.md, Deployment): a worker of its own for the escalation
        engine's queue, so dispatching a step never waits behind deliveries, and one for everything else,
        with the documented pool sizes (config/queues.py) unless `worker_concurrency` says otherwise."""
        from config.queues import DISPATCH_CONCURRENCY, DISPATCH_QUEUES, WORKER_CONCURRENCY, WORKER_QUEUES

        return (
            self.add_worker(dispatch, concurrency=DISPATCH_CONCURRENCY, queues=DISPATCH_QUEUES),
            self.add_worker(worker, concurrency=worker_concurrency or WORKER_CONCURRENCY, queues=WORKER_QUEUES),
        )

    def add_beat(self, name: str) -> Child:
        return self._child(
            name,
            [CELERY, "-A", "config", "beat", "-l", "WARNING", "-s", str(self.dir / f"{name}-schedule")],
        )

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system, seconds) used so far by each child's process tree, and as "postgres"
        by the whole PostgreSQL server (the postmaster's tree, exited backends included: Celery's Django
        fixup closes the connection around every task, so backends come and go). The server is shared
        with any other database on it; on a quiet machine the stack is its only user. Linux /proc."""
        stats: dict[int, tuple[int, float]] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    # (parent, utime + stime + cutime + cstime): its own and its exited, reaped children's
                    stats[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
        children_of: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children_of.setdefault(ppid, []).append(pid)

        def tree(root: int) -> float:
            total, todo = 0.0, [root]
            while todo:
                pid = todo.pop()
                total += stats.get(pid, (0, 0.0))[1]
                todo += children_of.get(pid, [])
            return total

        result = {name: tree(child.popen.pid) for name, child in self.children.items() if child.alive}
        if self._postmaster is None:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(self.admin_url, autocommit=True) as conn:
                    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                    self._postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if self._postmaster in stats:
            result["postgres"] = tree(self._postmaster)
        return result

    def memory_kib(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(child name, pid) -> (RSS, RssAnon) in KiB of every process of every running child's tree
        (gunicorn workers and Celery pool processes included). RssAnon is the process's own heap and
        stacks: what a leak grows, without the shared pages of code and forked parents. Linux /proc."""
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        children_of: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            children_of.setdefault(ppid, []).append(pid)
        result: dict[tuple[str, int], tuple[int, int]] = {}
        for name, child in self.children.items():
            if not child.alive:
                continue
            todo = [child.popen.pid]
            while todo:
                pid = todo.pop()
                todo += children_of.get(pid, [])
                fields: dict[str, int] = {}
                with contextlib.suppress(OSError, ValueError, IndexError):
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        key, _, value = line.partition(":")
                        if key in ("VmRSS", "RssAnon"):
                            fields[key] = int(value.split()[0])
                if "VmRSS" in fields:
                    result[(name, pid)] = (fields["VmRSS"], fields.get("RssAnon", fields["VmRSS"]))
        return result

    def wait_ready(self, timeout: float = 60) -> None:
        """/readyz: database and broker reachable and the escalation sweep has ticked."""
        web = self.children.get("web")
        _wait(lambda: _http_ok(f"{self.web_url}/readyz"), timeout, "/readyz (db, broker, beat)", web)

    # --- teardown ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Beats first (no new work), then workers, web, fakes, the broker last.
        order = sorted(
            self.children.values(), key=lambda c: ("beat" not in c.name, c.name.startswith(("redis", "sentinel")))
        )
        for child in order:
            child.stop(sig=signal.SIGTERM, grace=1.0 if child.name.startswith(("redis", "sentinel")) else 3.0)
        self.drop_database()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _http_ok(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (URLError, OSError):
        return False


def _wait(predicate: Callable[[], bool], timeout: float, what: str, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if child is not None and not child.alive:
            raise RuntimeError(f"{child.name} exited while waiting for {what}:\n{child.tail()}")
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}" + (f":\n{child.tail()}" if child else ""))
