"""While PostgreSQL cannot store an event, intake answers 503 with Retry-After (never 202, never 500),
/readyz reports the database, and both recover by themselves once it is back.

Two real outages of the test database, as a web process sees them: the server is gone (the port
refuses connections, as while `pg_ctl stop` lasts), and the server drops a connection it had (the
backend terminated, as at a crash restart, with CONN_MAX_AGE keeping the connection between
requests). Requests go through the real WSGI handlers (the bare PagerDuty one and Django's), so the
request_started/finished signals close a broken connection as under gunicorn. The whole chaos run
(tests/proof/test_chaos_faults.py) stops a real private cluster.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection

from config.wsgi_routing import LeanWSGIHandler
from escalations.intake import kick
from escalations.intake.wsgi import PagerDutyWSGI
from escalations.models import InboxEvent, Integration
from portal.models import JobRun
from tests.escalations.intake_payloads import pdpyras_trigger
from tests.escalations.test_intake_wsgi import call
from tests.factories import HeartbeatFactory, IntegrationFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)

PD = "/integrations/pagerduty/v2/enqueue"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    cache.clear()
    monkeypatch.setattr(kick, "inbox_kick_publish", lambda: None)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_gone() -> Iterator[None]:
    """The database server stops answering: every connection attempt is refused until the fixture
    ends (then it is "back", on the same settings)."""
    saved = {k: connection.settings_dict[k] for k in ("HOST", "PORT")}
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def _server_drops_connection() -> None:
    """Keep this process's connection between requests (CONN_MAX_AGE, as in production), then have
    the server terminate its backend, as a crash restart of PostgreSQL does."""
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 60
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def keeps_connections() -> Iterator[None]:
    yield
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 0


def _events(key: str) -> dict[str, tuple[str, bytes, dict]]:
    """One request per intake endpoint that stores an event: (path, body, extra environ)."""
    return {
        "pagerduty": (PD, json.dumps(pdpyras_trigger(routing_key=key, dedup_key="o1")).encode(), {}),
        "generic": (
            f"/integrations/generic/{key}/",
            json.dumps({"summary": "disk full", "dedup_key": "o1"}).encode(),
            {},
        ),
        "opsgenie": (
            "/integrations/opsgenie/v2/alerts",
            json.dumps({"message": "disk full", "alias": "o1"}).encode(),
            {"HTTP_AUTHORIZATION": f"GenieKey {key}"},
        ),
    }


@pytest.fixture
def keys() -> dict[str, str]:
    team = TeamFactory()
    return {
        kind: IntegrationFactory(team=team, kind=kind).key
        for kind in (Integration.Kind.PAGERDUTY, Integration.Kind.GENERIC, Integration.Kind.OPSGENIE)
    }


def _send(app, name: str, key: str) -> dict:
    path, body, extra = _events(key)[name]
    return call(app, path, body, **extra)


def _assert_unavailable(answer: dict) -> None:
    assert answer["status"].startswith("503"), (answer["status"], answer["body"][:300])
    assert ("Retry-After", "5") in answer["headers"]
    assert "retry" in json.loads(answer["body"])["message"].lower()


@pytest.mark.parametrize("name", ["pagerduty", "generic", "opsgenie"])
def test_intake_answers_503_while_the_server_is_gone_and_202_once_back(keys, name):
    key = keys[name]
    apps = (PagerDutyWSGI(LeanWSGIHandler()), LeanWSGIHandler()) if name == "pagerduty" else (LeanWSGIHandler(),)
    with server_gone():
        for app in apps:
            _assert_unavailable(_send(app, name, key))
    assert InboxEvent.objects.count() == 0
    for app in apps:
        answer = _send(app, name, key)
        assert answer["status"].startswith("202"), answer["body"][:300]
    assert InboxEvent.objects.count() == len(apps)


@pytest.mark.parametrize("name", ["pagerduty", "generic", "opsgenie"])
def test_intake_recovers_by_itself_after_the_server_dropped_its_connection(keys, name, keeps_connections):
    key = keys[name]
    app = PagerDutyWSGI(LeanWSGIHandler()) if name == "pagerduty" else LeanWSGIHandler()
    _server_drops_connection()
    _assert_unavailable(_send(app, name, key))
    assert InboxEvent.objects.count() == 0  # nothing half-stored; this query reconnects by itself
    _server_drops_connection()
    _assert_unavailable(_send(app, name, key))
    # The broken connection was closed at the end of that request: the next one stores the event.
    answer = _send(app, name, key)
    assert answer["status"].startswith("202"), answer["body"][:300]
    assert InboxEvent.objects.count() == 1


def test_heartbeat_ping_answers_503_while_the_server_is_gone(db):
    token = HeartbeatFactory().token
    app = LeanWSGIHandler()
    with server_gone():
        answer = call(app, f"/integrations/heartbeat/{token}/", b"", method="POST")
    _assert_unavailable(answer)
    assert call(app, f"/integrations/heartbeat/{token}/", b"", method="POST")["status"].startswith("200")


def test_readyz_reports_the_database_while_it_is_gone_and_recovers(db):
    from django.utils import timezone

    JobRun.objects.create(name="escalation-sweep", last_success_at=timezone.now())
    app = LeanWSGIHandler()
    with server_gone():
        down = call(app, "/readyz", method="GET")
    assert down["status"].startswith("503")
    assert json.loads(down["body"]) == {"status": "unavailable", "problems": ["database: OperationalError"]}
    up = call(app, "/readyz", method="GET")
    assert up["status"].startswith("200"), up["body"]


def test_readyz_after_the_server_dropped_its_connection(db, keeps_connections):
    from django.utils import timezone

    JobRun.objects.create(name="escalation-sweep", last_success_at=timezone.now())
    app = LeanWSGIHandler()
    _server_drops_connection()
    down = call(app, "/readyz", method="GET")
    assert down["status"].startswith("503")
    assert json.loads(down["body"])["problems"] == ["database: OperationalError"]
    assert call(app, "/readyz", method="GET")["status"].startswith("200")


def test_a_bad_body_while_the_server_is_gone_is_still_a_400(keys):
    # The key's refusal cannot be looked up: the answer is about the body, never a 500.
    with server_gone():
        answer = call(LeanWSGIHandler(), f"/integrations/generic/{keys['generic']}/", b'{"summary": ')
    assert answer["status"].startswith("400"), answer["body"][:300]
