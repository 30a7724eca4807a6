"""Prometheus metrics: what each outcome increments, who may scrape, and a real Prometheus scraping
/metrics on the loopback (Debian's `prometheus`; skipped with the reason when it is absent)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from escalations.delivery.deliver import page_deliver
from escalations.incidents import services
from escalations.models import Incident, TimelineEvent
from escalations.monitoring import health, metrics
from portal.models import JobRun
from tests.factories import IncidentFactory, IntegrationFactory, PageFactory, TeamFactory

pytestmark = pytest.mark.django_db


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client, **extra) -> dict[str, list]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    families = text_string_to_metric_families(response.content.decode())
    return {f.name: f.samples for f in families}


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


# --- access ---------------------------------------------------------------------------------------


def test_metrics_answer_the_loopback_and_a_bearer_token_only(client, settings):
    settings.BACKSTOP_METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    far = {"REMOTE_ADDR": "203.0.113.9"}
    refused = client.get("/metrics", **far)
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token", **far).status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **far).status_code == 200
    settings.BACKSTOP_METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", **far).status_code == 200
    assert client.get("/metrics").status_code == 401  # the loopback is no longer listed
    # A forged X-Forwarded-For does not make a far client local.
    settings.BACKSTOP_METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1", **far).status_code == 401


def test_no_token_configured_means_no_token_is_accepted(client, settings):
    settings.BACKSTOP_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", REMOTE_ADDR="203.0.113.9").status_code == 401


# --- counters at the places that record outcomes --------------------------------------------------


def test_delivery_counts_sent_pages_lateness_and_provider_errors(fake_twilio):
    sent, late, errors, retries = (
        sample("backstop_pages_total", channel="sms", status="sent"),
        sample("backstop_delivery_lateness_seconds_count", channel="sms"),
        sample("backstop_provider_errors_total", channel="sms", code="20500"),
        sample("backstop_page_retries_total", channel="sms"),
    )
    now = timezone.now()
    page = PageFactory(due_at=now - timedelta(seconds=3))
    assert page_deliver(page_id=page.pk, now=now).result == "sent"
    assert sample("backstop_pages_total", channel="sms", status="sent") == sent + 1
    assert sample("backstop_delivery_lateness_seconds_count", channel="sms") == late + 1
    # Three seconds late: in the 5 s bucket, not the 2 s one.
    le5 = sample("backstop_delivery_lateness_seconds_bucket", channel="sms", le="5.0")
    le2 = sample("backstop_delivery_lateness_seconds_bucket", channel="sms", le="2.0")
    assert le5 - le2 >= 1

    fake_twilio.plan("500")
    failing = PageFactory(due_at=now)
    assert page_deliver(page_id=failing.pk, now=now).result == "retry"
    assert sample("backstop_provider_errors_total", channel="sms", code="20500") == errors + 1
    assert sample("backstop_page_retries_total", channel="sms") == retries + 1


def test_provider_error_codes_are_a_bounded_vocabulary():
    assert metrics.provider_error_code("Twilio 400 (code 21211): The 'To' number +15551234567 is not valid") == "21211"
    assert metrics.provider_error_code("Twilio 503 (code None): down") == "http_503"
    assert metrics.provider_error_code("could not connect to Twilio: refused") == "connect"
    assert metrics.provider_error_code("no answer from Twilio: read timed out") == "no_answer"
    assert metrics.provider_error_code("something about +15551234567") == "other"


def test_intake_counts_stored_rejected_and_rate_limited_by_kind(client, settings):
    integration = IntegrationFactory(kind="generic")
    url = f"/integrations/generic/{integration.key}/"
    before = {o: sample("backstop_intake_events_total", kind="generic", outcome=o) for o in ("stored", "rejected")}
    body = json.dumps({"summary": "Disk full", "dedup_key": "disk"})
    assert client.post(url, data=body, content_type="application/json").status_code == 202
    assert client.post(url, data="not json", content_type="application/json").status_code == 400
    assert sample("backstop_intake_events_total", kind="generic", outcome="stored") == before["stored"] + 1
    assert sample("backstop_intake_events_total", kind="generic", outcome="rejected") == before["rejected"] + 1

    limited = sample("backstop_intake_events_total", kind="pagerduty", outcome="rate_limited")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"integration": "1/min"}}
    pd = IntegrationFactory(kind="pagerduty")
    event = {
        "routing_key": pd.key,
        "event_action": "trigger",
        "payload": {"summary": "x", "source": "s", "severity": "info"},
    }
    statuses = [
        client.post(
            "/integrations/pagerduty/v2/enqueue", data=json.dumps(event), content_type="application/json"
        ).status_code
        for _ in range(3)
    ]
    assert 429 in statuses
    assert sample("backstop_intake_events_total", kind="pagerduty", outcome="rate_limited") == limited + statuses.count(
        429
    )


def test_acknowledgement_and_resolution_times_are_observed_after_commit(django_capture_on_commit_callbacks):
    incident = IncidentFactory(created_at=timezone.now() - timedelta(minutes=3))
    acks = sample("backstop_incident_ack_seconds_count", urgency=incident.urgency)
    within_5m = sample("backstop_incident_ack_seconds_bucket", urgency=incident.urgency, le="300.0")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.incident_acknowledge(incident=incident, by=None, via=TimelineEvent.Via.API)
    assert sample("backstop_incident_ack_seconds_count", urgency=incident.urgency) == acks + 1
    assert sample("backstop_incident_ack_seconds_bucket", urgency=incident.urgency, le="300.0") == within_5m + 1
    resolved = sample("backstop_incident_resolve_seconds_count", urgency=incident.urgency)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.incident_resolve(incident=incident, by=None, via=TimelineEvent.Via.API)
    assert sample("backstop_incident_resolve_seconds_count", urgency=incident.urgency) == resolved + 1


# --- scrape-time gauges ---------------------------------------------------------------------------


def test_state_gauges_count_open_incidents_inbox_jobs_and_workers(client):
    payments, search = TeamFactory(slug="payments"), TeamFactory(slug="search")
    IncidentFactory.create_batch(2, team=payments, urgency="high")
    IncidentFactory(team=search, urgency="low", status=Incident.Status.ACKNOWLEDGED)
    IncidentFactory(team=search, status=Incident.Status.RESOLVED)
    integration = IntegrationFactory(kind="generic")
    client.post(f"/integrations/generic/{integration.key}/", data='{"summary": "a"}', content_type="application/json")
    now = timezone.now()
    JobRun.objects.create(name=health.worker_job_name("escalations"), last_success_at=now, runs=3)
    JobRun.objects.create(name=health.worker_job_name("deliveries"), last_success_at=now - timedelta(minutes=5))
    JobRun.objects.create(name="escalation-sweep", last_success_at=now - timedelta(seconds=30), runs=9)

    samples = scrape(client)
    open_ = {
        (s.labels["team"], s.labels["urgency"], s.labels["status"]): s.value for s in samples["backstop_incidents_open"]
    }
    assert open_ == {("payments", "high", "triggered"): 2, ("search", "low", "acknowledged"): 1}
    assert samples["backstop_inbox_pending"][0].value == 1
    assert samples["backstop_inbox_oldest_pending_age_seconds"][0].value >= 0
    ages = {s.labels["name"]: s.value for s in samples["backstop_job_last_success_age_seconds"]}
    assert 29 <= ages["escalation-sweep"] < 120
    seen = {s.labels["queue"]: s.value for s in samples["backstop_workers_seen"]}
    assert seen == {"escalations": 1, "deliveries": 0, "periodic": 0, "celery": 0, "webhooks": 0}
    depths = {s.labels["queue"] for s in samples["backstop_queue_depth"]}
    assert depths == {"celery", "periodic", "escalations", "deliveries", "webhooks"}
    up = {s.labels["source"]: s.value for s in samples["backstop_collector_up"]}
    assert up == {"incidents": 1, "inbox": 1, "jobs": 1, "broker": 1}


def test_labels_carry_no_ids_or_numbers(client, fake_twilio):
    PageFactory(destination="+15557654321")
    page_deliver(page_id=PageFactory(destination="+15551234567").pk)
    text = client.get("/metrics").content.decode()
    assert "+1555" not in text and "5551234567" not in text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert not {"incident", "incident_id", "page", "page_id", "phone", "to"} & set(s.labels)


# --- a real Prometheus ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(base: str, expr: str) -> list[dict]:
    with urlopen(f"{base}/api/v1/query?{urlencode({'query': expr})}", timeout=5) as resp:
        return json.load(resp)["data"]["result"]


def _wait_value(base: str, expr: str, want, timeout: float = 30.0) -> float:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        result = _query(base, expr)
        if result:
            last = float(result[0]["value"][1])
            if want(last):
                return last
        time.sleep(0.5)
    raise AssertionError(f"{expr}: last value {last}")


@pytest.fixture
def prometheus(live_server, tmp_path: Path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus package is not installed (bin/lib.sh debian_tools_ensure installs it)")
    port = _free_port()
    target = live_server.url.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: backstop-web\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urlopen(f"{base}/-/ready", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_metrics_and_sees_state_change(prometheus, client):
    team = TeamFactory(slug="checkout")
    IncidentFactory.create_batch(3, team=team)
    integration = IntegrationFactory(kind="alertmanager", team=team)
    for _ in range(2):
        client.post(f"/integrations/alertmanager/{integration.key}/", data="{}", content_type="application/json")

    assert _wait_value(prometheus, 'up{job="backstop-web"}', lambda v: v == 1) == 1
    assert _wait_value(prometheus, 'sum(backstop_incidents_open{team="checkout"})', lambda v: v == 3) == 3
    rejected = 'backstop_intake_events_total{kind="alertmanager",outcome="rejected"}'
    assert _wait_value(prometheus, rejected, lambda v: v >= 2) >= 2
    # No worker heartbeat yet: the "no worker on a queue" rule's input is 0 ...
    assert _wait_value(prometheus, 'backstop_workers_seen{queue="deliveries"}', lambda v: v == 0) == 0
    # ... until a worker runs the heartbeat, and Prometheus sees it on a later scrape.
    JobRun.objects.create(name=health.worker_job_name("deliveries"), last_success_at=timezone.now())
    assert _wait_value(prometheus, 'backstop_workers_seen{queue="deliveries"}', lambda v: v == 1) == 1
    # The beat-stale rule's expression, as shipped, on what Prometheus stored (its own `job` label must
    # not have renamed ours).
    JobRun.objects.create(name="escalation-sweep", last_success_at=timezone.now() - timedelta(minutes=5))
    stale = 'min(backstop_job_last_success_age_seconds{name="escalation-sweep"}) > 120'
    assert _wait_value(prometheus, stale, lambda v: v >= 300) >= 300
    Incident.objects.filter(team=team).update(status=Incident.Status.RESOLVED)
    assert _wait_value(prometheus, 'sum(backstop_incidents_open{team="checkout"}) or vector(0)', lambda v: v == 0) == 0
