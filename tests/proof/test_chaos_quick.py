"""The chaos run in CI size: real processes, killed workers, a restarted broker, a flaky Twilio.

`bench/chaos.py --quick` starts its own database, Redis, fake Twilio, gunicorn, two workers and beat,
injects faults while 60 incidents escalate, and counts every page the fake Twilio received against
the pages the policies require. It exits non-zero on any missing or duplicated page.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("chaos")]


def test_chaos_quick_loses_and_doubles_nothing():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=480,
    )
    out = proc.stdout + proc.stderr
    # The report is on stdout; stderr holds the expected noise of a broker that was killed.
    assert proc.returncode == 0, proc.stdout[-6000:] + "\n--- stderr tail ---\n" + proc.stderr[-2000:]
    required = int(re.search(r"^Pages required: (\d+)$", out, re.M).group(1))
    assert required > 300, out[-3000:]
    assert re.search(r"^Missing: 0$", out, re.M), out[-3000:]
    assert re.search(r"^Duplicate: 0 ", out, re.M), out[-3000:]
    assert re.search(r"^Unexpected \(.*\): 0$", out, re.M), out[-3000:]
    assert "SIGKILL" in out and "redis restarted" in out, out[-3000:]
