"""The dead man's switch pings a local HTTP receiver only while beat, both paging workers and the
database are healthy; the System page shows the same facts."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from escalations.models import SwitchPing
from escalations.monitoring import health, services
from escalations.monitoring.tasks import worker_heartbeat
from portal.models import JobRun

pytestmark = pytest.mark.django_db


class Receiver:
    """A healthchecks.io stand-in: records each ping, answers `status`."""

    def __init__(self) -> None:
        self.pings: list[str] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.pings.append(self.path)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/2b9c0e8a"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    r = Receiver()
    settings.BACKSTOP_DEADMAN_URL = r.url
    yield r
    r.close()


def _healthy(now, *, sweep_age=5, worker_age=5) -> None:
    JobRun.objects.update_or_create(
        name="escalation-sweep", defaults={"last_success_at": now - timedelta(seconds=sweep_age)}
    )
    for queue in health.PAGING_QUEUES:
        JobRun.objects.update_or_create(
            name=health.worker_job_name(queue), defaults={"last_success_at": now - timedelta(seconds=worker_age)}
        )


def test_pings_while_everything_is_healthy(receiver):
    now = timezone.now()
    _healthy(now)
    switch = services.deadman_run(now=now)
    assert receiver.pings == ["/ping/2b9c0e8a"]
    assert (switch.last_result, switch.last_status, switch.last_pinged_at, switch.pings) == ("pinged", 200, now, 1)
    assert switch.last_problems == []


def test_a_stale_beat_stops_the_pings_and_says_why(receiver):
    now = timezone.now()
    _healthy(now)
    services.deadman_run(now=now)
    later = now + timedelta(minutes=2, seconds=1)  # the sweep's last run is now older than BEAT_STALE_AFTER
    _healthy(later, sweep_age=125)
    switch = services.deadman_run(now=later)
    assert len(receiver.pings) == 1
    assert switch.last_result == "unhealthy"
    assert switch.last_pinged_at == now  # the last good ping stays on record
    assert any(p.startswith("beat: the escalation sweep last ran at") for p in switch.last_problems)
    # The beat comes back: pings resume.
    _healthy(later)
    assert services.deadman_run(now=later).last_result == "pinged"
    assert len(receiver.pings) == 2


@pytest.mark.parametrize("queue", health.PAGING_QUEUES)
def test_a_missing_worker_on_either_paging_queue_stops_the_pings(receiver, queue):
    now = timezone.now()
    _healthy(now)
    JobRun.objects.filter(name=health.worker_job_name(queue)).update(last_success_at=now - timedelta(minutes=2))
    switch = services.deadman_run(now=now)
    assert receiver.pings == []
    assert switch.last_problems == [
        f"worker on {queue}: last seen at {(now - timedelta(minutes=2)).isoformat(timespec='seconds')}"
    ]


def test_a_worker_never_seen_stops_the_pings(receiver):
    now = timezone.now()
    JobRun.objects.create(name="escalation-sweep", last_success_at=now)
    switch = services.deadman_run(now=now)
    assert receiver.pings == []
    assert "worker on escalations: never seen" in switch.last_problems


def test_a_failing_receiver_is_recorded_not_raised(receiver):
    now = timezone.now()
    _healthy(now)
    receiver.status = 503
    switch = services.deadman_run(now=now)
    assert (switch.last_result, switch.last_status, switch.last_pinged_at) == ("ping failed", 503, None)
    assert switch.last_problems == ["ping: HTTP 503"]


def test_an_unreachable_receiver_times_out_quickly(settings):
    settings.BACKSTOP_DEADMAN_TIMEOUT_SECONDS = 1
    now = timezone.now()
    _healthy(now)
    switch = services.deadman_run(now=now, url="http://127.0.0.1:9/never")
    assert switch.last_result == "ping failed"
    assert switch.last_status is None


def test_not_configured_pings_nothing(settings):
    settings.BACKSTOP_DEADMAN_URL = ""
    switch = services.deadman_run(now=timezone.now())
    assert switch.last_result == "not configured"


def test_worker_heartbeat_records_its_queue_and_ignores_unknown_ones():
    worker_heartbeat("deliveries")
    worker_heartbeat("somebody-elses-queue")
    assert set(JobRun.objects.values_list("name", flat=True)) == {"worker:deliveries"}


def test_system_page_shows_the_checks_and_the_last_ping(client, staff, mfa_user, receiver):
    now = timezone.now()
    _healthy(now)
    services.deadman_run(now=now)
    client.force_login(mfa_user(staff))
    response = client.get("/system/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Backstop can page" in text
    assert "Dead man&#x27;s switch" in text or "Dead man's switch" in text
    assert f"127.0.0.1:{receiver.server.server_address[1]}" in text
    assert "2b9c0e8a" not in text  # the check id in the URL is a secret
    assert "pinged (HTTP 200)" in text
    assert 'href="/system/"' in text  # in the staff navigation
    JobRun.objects.filter(name="escalation-sweep").update(last_success_at=now - timedelta(hours=1))
    assert "Backstop may not page" in client.get("/system/").content.decode()
    assert SwitchPing.objects.count() == 1
