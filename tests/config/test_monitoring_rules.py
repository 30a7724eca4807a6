"""The shipped alert rules and dashboard: `promtool check rules` and `promtool test rules` pass, every
rule has a unit test, and every metric they name is one Backstop exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from escalations.monitoring import metrics

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
RULES = DOCS / "backstop.rules.yml"
RULE_TESTS = DOCS / "backstop.rules.test.yml"
DASHBOARD = DOCS / "grafana-dashboard.json"

# Scrape-time gauges (escalations.monitoring.collectors) and Prometheus's own `up`.
GAUGES = {
    "up",
    "backstop_incidents_open",
    "backstop_inbox_pending",
    "backstop_inbox_oldest_pending_age_seconds",
    "backstop_job_last_success_age_seconds",
    "backstop_job_runs",
    "backstop_workers_seen",
    "backstop_deadman_last_ping_age_seconds",
    "backstop_queue_depth",
    "backstop_collector_up",
}


def _exported() -> set[str]:
    names = set(GAUGES)
    for value in vars(metrics).values():
        if hasattr(value, "_type") and hasattr(value, "_name"):
            base = value._name
            names |= (
                {f"{base}_total"} if value._type == "counter" else {f"{base}_bucket", f"{base}_count", f"{base}_sum"}
            )
    return names


def _promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed; bin/lib.sh installs it")
    return binary


def test_promtool_checks_the_rules():
    proc = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_pass():
    proc = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name], cwd=DOCS, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_rule_is_unit_tested_firing_and_quiet():
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert alerts == firing
    assert alerts == quiet


def _metric_names(expr: str) -> set[str]:
    return {m for m in re.findall(r"\b(backstop_[a-z_]+|up)\b", expr)}


def test_rules_and_dashboard_name_only_exported_metrics():
    exported = _exported()
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = set().union(*(_metric_names(e) for e in exprs))
    assert named <= exported, named - exported
    # The dashboard shows every counter and histogram family Backstop records.
    shown = set().union(*(_metric_names(t["expr"]) for p in dashboard["panels"] for t in p["targets"]))
    families = {n.rsplit("_", 1)[0] for n in exported if n.endswith(("_total", "_bucket"))}
    assert {"backstop_pages", "backstop_delivery_lateness_seconds", "backstop_phone_calls"} <= families
    missing = {f for f in families if not any(s.startswith(f) for s in shown)} - {
        "backstop_incidents_opened",
        "backstop_deadman_pings",
    }
    assert not missing, missing
