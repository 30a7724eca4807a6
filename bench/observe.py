"""Watch the chaos run the way an operator would: a real Prometheus scraping web and workers on the
loopback, and a stand-in for the outside dead man's switch service (`bench/chaos.py --prometheus`).

`Observer.configure(stack)` (before any child starts) gives gunicorn and each worker its own
PROMETHEUS_MULTIPROC_DIR, each worker a WORKER_METRICS_PORT, points DEADMAN_URL at a local receiver and
shortens the health intervals so that a short run shows them (beat stale after 5 s, worker heartbeats
every 2 s and stale after 6 s, the switch every 5 s; production: 120 s, 15 s, 60 s, 60 s).
`start_prometheus()` runs Debian's `prometheus` (1 s scrapes); `report(faults)` queries it and prints,
per fact, how it moved across the run: provider errors, a worker gone, beat stale, and their recovery,
with the dead man's switch's pings around the beat outage.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode
from urllib.request import urlopen

from bench.harness import Stack, free_port

# Scaled-down intervals for a run of a few minutes (see the module docstring).
FAST_HEALTH = {
    "BEAT_STALE_AFTER_SECONDS": "5",
    "WORKER_HEARTBEAT_SECONDS": "2",
    "WORKER_STALE_AFTER_SECONDS": "6",
    "DEADMAN_INTERVAL_SECONDS": "5",
}


class PingReceiver:
    """The outside service (healthchecks.io and the like): records when each ping arrived."""

    def __init__(self, stack: Stack) -> None:
        self.times: list[float] = []
        self.t0 = stack.t0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.times.append(time.monotonic() - receiver.t0)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/chaos"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Observer:
    def __init__(self, stack: Stack, workers: tuple[str, ...]) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise SystemExit("--prometheus needs Debian's prometheus package (bin/lib.sh installs it as root)")
        self.stack = stack
        self.workers = workers
        self.port = free_port()
        self.worker_ports = {name: free_port() for name in workers}
        self.receiver = PingReceiver(stack)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def configure(self) -> None:
        stack = self.stack
        stack.env_overrides.update({**FAST_HEALTH, "DEADMAN_URL": self.receiver.url})
        for name in ("web", *self.workers):
            folder = stack.dir / "prometheus-multiproc" / name
            folder.mkdir(parents=True, exist_ok=True)
            stack.child_env[name] = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
        for name, port in self.worker_ports.items():
            stack.child_env[name]["WORKER_METRICS_PORT"] = str(port)

    def start_prometheus(self) -> None:
        stack = self.stack
        jobs = [("backstop-web", f"127.0.0.1:{stack.web_port}")]
        jobs += [(f"backstop-{name}", f"127.0.0.1:{port}") for name, port in self.worker_ports.items()]
        config = "global: {scrape_interval: 2s, scrape_timeout: 2s}\nscrape_configs:\n" + "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n" for job, target in jobs
        )
        (stack.dir / "prometheus.yml").write_text(config)
        log = open(stack.dir / "prometheus.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={stack.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={stack.dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urlopen(f"{self.base}/-/ready", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        self.started_at = time.time()
        stack.event(f"prometheus scraping web and {', '.join(self.workers)} on 127.0.0.1:{self.port}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _range(self, expr: str, step: float = 1.0) -> list[tuple[float, float]]:
        query = urlencode({"query": expr, "start": self.started_at, "end": time.time(), "step": step})
        with urlopen(f"{self.base}/api/v1/query_range?{query}", timeout=10) as resp:
            result = json.load(resp)["data"]["result"]
        if not result:
            return []
        return [(float(t), float(v)) for t, v in result[0]["values"]]

    def _run_seconds(self, epoch: float) -> float:
        # Prometheus speaks epoch seconds; the run's log speaks seconds since the stack started.
        return self.stack.elapsed() - (time.time() - epoch)

    def _changes(self, expr: str, fmt: str = "{:.0f}") -> str:
        """Where the value changes, as `t=<run seconds>s value` pairs (one line per fact)."""
        points = self._range(expr)
        if not points:
            return "no data"
        out, last = [], None
        for epoch, value in points:
            shown = fmt.format(value)
            if shown != last:
                out.append(f"{self._run_seconds(epoch):.0f}s={shown}")
                last = shown
        return " ".join(out)

    def report(self, faults: list[str]) -> None:
        print("\n=== Prometheus during the run (value changes, at seconds since start) ===")
        for title, expr, fmt in (
            ("web up", 'up{job="backstop-web"}', "{:.0f}"),
            *((f"{name} scrape up", f'up{{job="backstop-{name}"}}', "{:.0f}") for name in self.workers),
            ("worker seen on escalations", 'max(backstop_workers_seen{queue="escalations"})', "{:.0f}"),
            ("worker seen on deliveries", 'max(backstop_workers_seen{queue="deliveries"})', "{:.0f}"),
            (
                "beat stale (sweep age > 5 s)",
                'max(backstop_job_last_success_age_seconds{name="escalation-sweep"}) > bool 5',
                "{:.0f}",
            ),
            ("provider errors /s (10 s rate)", "sum(rate(backstop_provider_errors_total[10s])) or vector(0)", "{:.1f}"),
            ("pages sent /s (10 s rate)", 'sum(rate(backstop_pages_total{status="sent"}[10s])) or vector(0)', "{:.0f}"),
            (
                "delivery lateness p99 (30 s window)",
                "histogram_quantile(0.99, sum by (le) (rate(backstop_delivery_lateness_seconds_bucket[30s])))",
                "{:.0f}s",
            ),
            ("queue depth deliveries", 'max(backstop_queue_depth{queue="deliveries"})', "{:.0f}"),
        ):
            print(f"  {title}: {self._changes(expr, fmt)}")
        # increase() over the whole run: counters restart with their worker.
        run = f"{time.time() - self.started_at:.0f}s"
        totals = self._instant(f"sum by (code) (increase(backstop_provider_errors_total[{run}]))")
        print("  provider errors by code over the run: " + (", ".join(totals) or "none"))
        pings = self.receiver.times
        gaps = [f"{a:.0f}s→{b:.0f}s" for a, b in zip(pings, pings[1:], strict=False) if b - a > 10]
        print(f"  dead man's switch pings: {len(pings)}; gaps over 10 s: {', '.join(gaps) or 'none'}")
        self._beat_outage_report(faults, pings)

    @staticmethod
    def _fault_times(faults: list[str], text: str) -> list[float]:
        return [float(f.split("s", 1)[0]) for f in faults if f.split("s", 1)[1].strip() == text]

    def _beat_outage_report(self, faults: list[str], pings: list[float]) -> None:
        """The switch around each beat outage: its last ping before the kill, its first after the restart."""
        starts = self._fault_times(faults, "restarted beat")
        for killed in self._fault_times(faults, "SIGKILL beat (whole process group)"):
            back = next((s for s in starts if s > killed), None)
            before = [p for p in pings if p <= killed]
            during = [p for p in pings if killed < p and (back is None or p <= back)]
            after = [p for p in pings if back is not None and p > back]
            line = (
                f"  beat killed at {killed:.0f}s: last ping before it at {before[-1]:.0f}s"
                if before
                else (f"  beat killed at {killed:.0f}s: no ping before it")
            )
            line += f"; {len(during)} ping(s) while it was down"
            if back is not None:
                line += (
                    f"; first ping {after[0] - back:.0f}s after its restart at {back:.0f}s" if after else "; none since"
                )
            print(line)

    def _instant(self, expr: str) -> list[str]:
        with urlopen(f"{self.base}/api/v1/query?{urlencode({'query': expr})}", timeout=10) as resp:
            result = json.load(resp)["data"]["result"]
        return [f"{r['metric'].get('code', '?')}: {float(r['value'][1]):.0f}" for r in result]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.receiver.close()
