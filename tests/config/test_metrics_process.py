"""Prometheus multiprocess mode: a worker's parent serves every pool process's samples, and a server
starts from an empty directory (config/metrics_process.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_worker_endpoint_merges_samples_of_processes_that_already_exited(tmp_path):
    """Two "pool processes" count pages and exit; the parent, started afterwards as a worker's parent
    is, serves their sum. Real processes: multiprocess mode is chosen when prometheus_client is imported."""
    folder = tmp_path / "multiproc"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale from a previous run")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    reset = "from config import metrics_process; metrics_process.multiproc_dir_reset()"
    subprocess.run([sys.executable, "-c", reset], cwd=ROOT, env=env, check=True)
    assert list(folder.iterdir()) == []  # the previous run's counts are gone
    child = textwrap.dedent(
        """
        import django; django.setup()
        from escalations.monitoring import metrics
        metrics.PAGES.labels("sms", "sent").inc(2)
        metrics.PROVIDER_ERRORS.labels("sms", "20500").inc()
        """
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", child], cwd=ROOT, env=env, check=True)
    port = _free_port()
    # The parent must not empty the folder here (it would at a real start): serve what the children left.
    parent = textwrap.dedent(
        f"""
        import os, urllib.request
        os.environ["WORKER_METRICS_PORT"] = "{port}"
        from config import metrics_process
        metrics_process.multiproc_dir_reset = lambda: None
        server = metrics_process.worker_metrics_start()
        print(urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        server.shutdown()
        """
    )
    out = subprocess.run([sys.executable, "-c", parent], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert 'backstop_pages_total{channel="sms",status="sent"} 4.0' in out.stdout
    assert 'backstop_provider_errors_total{channel="sms",code="20500"} 2.0' in out.stdout


def test_no_port_no_server(monkeypatch):
    from config import metrics_process

    monkeypatch.delenv("WORKER_METRICS_PORT", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics_process.worker_metrics_start() is None


def test_a_busy_port_never_stops_the_worker(monkeypatch):
    from config import metrics_process

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("WORKER_METRICS_PORT", str(busy.getsockname()[1]))
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        assert metrics_process.worker_metrics_start() is None
