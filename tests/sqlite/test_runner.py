"""Run tests/sqlite on SQLite from the main (PostgreSQL) suite: one pytest process, one database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_services_pass_on_sqlite():
    if connection.vendor == "sqlite":
        pytest.skip("already on SQLite")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_SETTINGS"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--ds=config.settings.test_sqlite",
            "-m",
            "sqlite",
            "tests/sqlite",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


def test_local_demo_can_sign_simulated_calls_but_keeps_the_outbox(monkeypatch):
    import importlib

    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    local = importlib.reload(importlib.import_module("config.settings.local"))
    assert local.TWILIO_AUTH_TOKEN  # /calls/simulate/ signs its requests with it
    # escalations.delivery.channels.twilio.twilio_configured() and the portal's outbox both need the SID too.
    assert not (local.TWILIO_ACCOUNT_SID and local.TWILIO_AUTH_TOKEN)
