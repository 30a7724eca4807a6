"""The chaos run's infrastructure faults in CI size (bench/faults.py), one run each:

* a PostgreSQL outage: a private cluster (initdb/pg_ctl) crashed for 5-12 s mid-run;
* a Redis failover: the broker behind three Sentinels, its master SIGKILLed and the replica promoted;
* a second node: two complete sets of web, dispatch worker, worker and beat, one SIGKILLed for good.

Each also runs the usual faults (killed workers and beat, flaky Twilio) and must lose and double no
page. The intake probe must see every 202 stored and applied, only 202 or 503 answers, no 202 while
the database is down, and /readyz answering 503 for the database during the outage.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pgcluster

ROOT = Path(__file__).resolve().parents[2]

# One xdist group with the other chaos run: on a small machine two at once would only slow both.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("chaos")]


def _chaos(*options: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--quick", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-6000:] + "\n--- stderr tail ---\n" + proc.stderr[-2000:]
    assert int(re.search(r"^Pages required: (\d+)$", out, re.M).group(1)) > 300, out[-3000:]
    assert re.search(r"^Missing: 0$", out, re.M), out[-3000:]
    assert re.search(r"^Duplicate: 0 ", out, re.M), out[-3000:]
    assert re.search(r"^Unexpected \(.*\): 0$", out, re.M), out[-3000:]
    assert re.search(r"^INFRA: PASS$", out, re.M), out[-3000:]
    accepted = re.search(r"^Intake probe: .* (\d+) accepted, (\d+) stored, (\d+) applied$", out, re.M)
    assert accepted and int(accepted.group(1)) > 20 and len(set(accepted.groups())) == 1, out[-3000:]
    return out


def test_postgresql_outage_loses_and_doubles_nothing_and_intake_says_503():
    if reason := pgcluster.available():
        pytest.skip(reason)
    out = _chaos("--pg-outage", "1")
    assert "PostgreSQL stopped for" in out and "PostgreSQL started again" in out, out[-3000:]
    during = re.search(r"^During PostgreSQL outages: (\d+) events answered \((\d+) x 503, 0 x 202\)", out, re.M)
    assert during and int(during.group(2)) > 0, out[-3000:]


def test_redis_failover_behind_sentinel_loses_nothing():
    if shutil.which("redis-sentinel") is None:
        pytest.skip("no redis-sentinel on this machine (Debian: redis-sentinel)")
    out = _chaos("--sentinel")
    assert re.search(r"SIGKILL Redis master \S+; Sentinels promoted redis", out), out[-3000:]


def test_one_of_two_nodes_killed_the_other_carries_every_page():
    out = _chaos("--nodes", "2", "--kill-node")
    assert "node b killed for good" in out, out[-3000:]
