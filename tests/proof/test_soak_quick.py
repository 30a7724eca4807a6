"""The soak in CI size: two minutes of intake, escalations and portal pages against real processes.

`bench/soak.py --quick` starts its own database, Redis, fake Twilio, gunicorn (config/gunicorn_conf.py),
the production worker layout and beat, runs the mixed load, samples the memory of every process and
reads every log. It exits non-zero when a process grew after warm-up, a log has an error, a request
failed, intake fell behind its rate or the inbox did not drain. The 30-minute run is the same script
without --quick (bench/README.md).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("soak")]


def test_soak_quick_keeps_memory_flat_and_logs_clean():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=480,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-6000:] + "\n--- stderr tail ---\n" + proc.stderr[-2000:]
    assert re.search(r"^VERDICT: PASS$", out, re.M), out[-3000:]
    # The load really ran: every intake event accepted, portal pages served, incidents escalated.
    sent = int(re.search(r"^intake \(PagerDuty, 202\): (\d+) requests, statuses \{202: (\d+)\}", out, re.M).group(1))
    assert sent > 5000, out[-3000:]
    assert re.search(r"^portal pages \(200\): \d+ requests, statuses \{200: \d+\}", out, re.M), out[-3000:]
    assert re.search(r"^pages sms: [1-9]\d* sent", out, re.M), out[-3000:]
    # Every judged process was sampled through the run: gunicorn workers, both Celery workers, beat.
    table = out.split("Memory after warm-up", 1)[1]
    for name in ("web", "dispatch", "worker", "beat", "redis"):
        assert re.search(rf"^\s+{name}\s+\d+\s+[\d.]+ M", table, re.M), table[:3000]
    assert "Error logs: none" in out, out[-3000:]
