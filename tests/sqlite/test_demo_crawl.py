"""The demo crawled as each demo role (tests/demo_crawl.py): on the configuration `bin/run` starts
(local settings, a fresh SQLite file, the filesystem broker, migrate + demo_seed), and on PostgreSQL
with the same seed. The demo is the first thing anyone sees of Backstop: no page of it may fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from tests.demo_crawl import ROLES, RoleCrawl, crawl, demo_activity, missing_details, sign_in

ROOT = Path(__file__).resolve().parents[2]
MAX_PAGES = 300


def _assert_clean(results: list[RoleCrawl], call_incident: int) -> None:
    for result in results:
        print(f"{result.role}: {result.requests} requests, statuses {result.statuses}")
    failures = [f"{r.role}: {failure}" for r in results for failure in r.failures]
    assert not failures, "\n".join(failures[:40])
    assert not missing_details(results)
    for result in results:  # the voicemail's incident (Payments: every demo role sees it)
        assert f"/incidents/{call_incident}/" in result.visited, result.role
        assert result.requests >= 40, (result.role, result.requests)


def test_crawl_starts_the_demo_as_bin_run_does():
    """The SQLite test below repeats bin/run's set-up steps; fail here when bin/run changes them."""
    script = (ROOT / "bin" / "run").read_text()
    for step in (
        "DJANGO_SETTINGS_MODULE:-config.settings.local",
        "manage.py migrate --noinput",
        "manage.py demo_seed",
        "manage.py devstack",
    ):
        assert step in script, step


@pytest.mark.slow
def test_demo_crawl_on_sqlite_as_bin_run_starts_it(tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("starts its own SQLite demo from the main suite")
    # bin/run's environment, with a fresh var/ (SQLite file, broker folders) instead of the checkout's.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "BACKSTOP_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "ERROR",
        "PYTHONUNBUFFERED": "1",
    }

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{args}: {proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        return proc.stdout

    for folder in ("queue", "processed", "control"):
        (tmp_path / "celery" / folder).mkdir(parents=True)
    run("manage.py", "migrate", "--noinput")
    assert "Demo roster loaded." in run("manage.py", "demo_seed")
    out = json.loads(run("-m", "tests.demo_crawl", str(MAX_PAGES)).strip().splitlines()[-1])
    results = [RoleCrawl(**r) for r in out["results"]]
    assert (tmp_path / "backstop.sqlite3").exists()
    _assert_clean(results, out["call_incident"])


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_crawl_on_postgresql(settings):
    from portal.demo import demo_seed

    # As config.settings.local: no staff MFA, the call simulator on, no Twilio account (the outbox).
    settings.BACKSTOP_REQUIRE_STAFF_MFA = False
    settings.BACKSTOP_PHONE_SIMULATOR = True
    settings.TWILIO_ACCOUNT_SID = ""
    demo_seed()
    call_incident = demo_activity()
    results = []
    for role, email in ROLES.items():
        client = Client(raise_request_exception=False)
        sign_in(client, email)
        results.append(crawl(client, role=role, email=email, max_pages=MAX_PAGES))
    _assert_clean(results, call_incident)
