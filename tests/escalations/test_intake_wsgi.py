"""The bare WSGI PagerDuty endpoints (escalations.intake.wsgi) answer exactly as the Django views do.

Every request is sent to both: `PagerDutyWSGI` and the Django handler it falls back to (the views
behind the intake middleware). Status line, headers (but Content-Length, which only the bare one
sends) and body must be identical, and each must store exactly what the other stores. These tests run
in autocommit, as under gunicorn, so the inbox INSERT takes its prepared-statement path.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.core.cache import cache
from django.test import override_settings

from config.wsgi_routing import LeanWSGIHandler
from escalations.intake import inbox, kick
from escalations.intake import views as intake_views
from escalations.intake.wsgi import PagerDutyWSGI, is_secure
from escalations.models import InboxEvent
from tests.escalations.intake_payloads import pdpyras_action, pdpyras_change, pdpyras_trigger
from tests.factories import IntegrationFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/integrations/pagerduty/v2/enqueue"
CHANGE_URL = "/integrations/pagerduty/v2/change/enqueue"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    cache.clear()
    monkeypatch.setattr(kick, "inbox_kick_publish", lambda: None)


def call(app, path, body: bytes = b"", method="POST", **environ):
    seen = {}
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        **environ,
    }
    chunks = app(env, lambda status, headers: seen.update(status=status, headers=headers))
    try:
        seen["body"] = b"".join(chunks)
    finally:
        chunks.close()
    return seen


def both(path, body=b"", **kwargs):
    """(bare, django) answers to the same request, and the inbox rows each one stored."""
    django_app = LeanWSGIHandler()
    bare_app = PagerDutyWSGI(LeanWSGIHandler())
    answers, stored = [], []
    for app in (bare_app, django_app):
        before = InboxEvent.objects.count()
        answers.append(call(app, path, body, **kwargs))
        stored.append(InboxEvent.objects.count() - before)
    return answers, stored


def assert_same(bare, django):
    assert bare["status"] == django["status"]
    assert bare["body"] == django["body"]
    length = [v for k, v in bare["headers"] if k == "Content-Length"]
    assert length == [str(len(bare["body"]))]
    assert [h for h in bare["headers"] if h[0] != "Content-Length"] == django["headers"]


@pytest.fixture
def key():
    return IntegrationFactory(team=TeamFactory()).key


def _body(obj) -> bytes:
    return obj if isinstance(obj, bytes) else obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()


CASES = {
    "trigger": lambda k: (URL, pdpyras_trigger(routing_key=k, dedup_key="d1", custom_details={"free": "3%"}), 1),
    "acknowledge": lambda k: (URL, pdpyras_action("acknowledge", "d1", routing_key=k), 1),
    "resolve": lambda k: (URL, pdpyras_action("resolve", "d1", routing_key=k), 1),
    "change": lambda k: (CHANGE_URL, pdpyras_change(routing_key=k), 1),
    "invalid_json": lambda k: (URL, b'{"routing_key": ', 0),
    "empty": lambda k: (URL, b"", 0),
    "array": lambda k: (URL, [pdpyras_trigger(routing_key=k)], 0),
    "missing_fields": lambda k: (URL, {"routing_key": k, "event_action": "trigger", "payload": {"summary": "x"}}, 0),
    "bad_action": lambda k: (URL, {"routing_key": k, "event_action": "explode"}, 0),
    "short_key": lambda k: (URL, pdpyras_trigger(routing_key="abc"), 0),
    "unknown_key": lambda k: (URL, pdpyras_trigger(routing_key="f" * 32), 0),
    "nan": lambda k: (
        URL,
        json.dumps(pdpyras_trigger(routing_key=k, custom_details={"x": 1})).replace("1}", "NaN}"),
        0,
    ),
    "nul_escape": lambda k: (URL, pdpyras_trigger(routing_key=k, summary="a\u0000b"), 0),
    "invalid_utf8": lambda k: (URL, json.dumps(pdpyras_trigger(routing_key=k)).encode()[:-1] + b"\xff}", 0),
    "deep": lambda k: (URL, "[" * 100_000 + "]" * 100_000, 0),
    "change_invalid": lambda k: (CHANGE_URL, {"routing_key": k, "payload": {}}, 0),
}


REACH_THE_DATABASE = {"trigger", "acknowledge", "resolve", "change", "unknown_key", "nan", "nul_escape"}


@pytest.mark.parametrize("case", CASES)
def test_the_bare_endpoint_answers_and_stores_as_the_django_view(key, case, monkeypatch):
    prepared = []
    real = inbox._insert_prepared
    monkeypatch.setattr(inbox, "_insert_prepared", lambda db, params: prepared.append(1) or real(db, params))
    path, body, stores = CASES[case](key)
    (bare, django), stored = both(path, _body(body))
    assert_same(bare, django)
    assert stored == [stores, stores]
    assert bare["status"].startswith("202" if stores else "400"), bare["body"][:300]
    # In autocommit (as under gunicorn) the INSERT is the prepared statement, refusals included.
    assert len(prepared) == (2 if case in REACH_THE_DATABASE else 0)


def test_disabled_integration(key):
    from escalations.models import Integration

    Integration.objects.filter(key=key).update(enabled=False)
    (bare, django), stored = both(URL, _body(pdpyras_trigger(routing_key=key)))
    assert_same(bare, django)
    assert json.loads(bare["body"])["errors"] == [inbox.DISABLED] and stored == [0, 0]


@override_settings(BACKSTOP_INTAKE_MAX_BYTES=2048)
def test_size_limit_by_content_length_by_body_and_a_lying_length(key):
    big = _body(pdpyras_trigger(routing_key=key, custom_details={"blob": "x" * 5000}))
    (bare, django), stored = both(URL, big)
    assert_same(bare, django)
    assert bare["status"] == "413 Request Entity Too Large" and stored == [0, 0]
    assert json.loads(bare["body"]) == {
        "status": "invalid event",
        "message": "Request entity too large",
        "errors": ["Request body exceeds 2048 bytes"],
    }
    # Content-Length says 100: only 100 bytes are read (not JSON: 400); missing: nothing is read.
    for length in ("100", "", "nonsense", "-5"):
        (bare, django), stored = both(URL, big, CONTENT_LENGTH=length)
        assert_same(bare, django)
        assert bare["status"].startswith("400") and stored == [0, 0]


@override_settings(BACKSTOP_INTAKE_RATE="2/min")
def test_rate_limit_answers(key):
    statuses = {}
    for name, app in (("bare", PagerDutyWSGI(LeanWSGIHandler())), ("django", LeanWSGIHandler())):
        cache.clear()
        intake_views.rate_leases.reset()
        answers = [call(app, URL, _body(pdpyras_trigger(routing_key=key, dedup_key="r"))) for _ in range(3)]
        statuses[name] = answers
    for bare, django in zip(statuses["bare"], statuses["django"], strict=True):
        assert_same(bare, django)
    assert [a["status"][:3] for a in statuses["bare"]] == ["202", "202", "429"]
    assert ("Retry-After", "1") in statuses["bare"][2]["headers"]
    assert json.loads(statuses["bare"][2]["body"])["status"] == "throttle exceeded"


def test_other_methods_and_paths_go_to_django(key):
    (bare, django), _ = both(URL, method="GET")
    assert bare == django and bare["status"].startswith("405")
    (bare, django), stored = both("/integrations/generic/" + key + "/", _body({"summary": "x"}))
    assert bare == django and stored == [0, 0]  # a PagerDuty key is not a generic integration: 404


@override_settings(
    SECURE_SSL_REDIRECT=True,
    SECURE_HSTS_SECONDS=3600,
    SECURE_HSTS_PRELOAD=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_https_redirect_and_hsts_as_security_middleware(key):
    body = _body(pdpyras_trigger(routing_key=key, dedup_key="s"))
    (bare, django), stored = both(URL, body)  # plain HTTP: redirected, nothing stored
    assert bare == django and bare["status"].startswith("301") and stored == [0, 0]
    (bare, django), stored = both(URL, body, HTTP_X_FORWARDED_PROTO="https")
    assert_same(bare, django)
    assert ("Strict-Transport-Security", "max-age=3600; preload") in bare["headers"] and stored == [1, 1]


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_is_secure_reads_the_proxy_header_as_django_does():
    from django.core.handlers.wsgi import WSGIRequest

    for environ in (
        {},
        {"HTTP_X_FORWARDED_PROTO": "https"},
        {"HTTP_X_FORWARDED_PROTO": "https, http"},
        {"HTTP_X_FORWARDED_PROTO": " http"},
        {"wsgi.url_scheme": "https"},
        {"wsgi.url_scheme": "https", "HTTP_X_FORWARDED_PROTO": "http"},
    ):
        full = {"REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", **environ}
        assert is_secure(full) == WSGIRequest(full).is_secure(), environ


def test_an_unexpected_error_is_djangos_500(key, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(inbox, "inbox_accept", broken)
    (bare, django), stored = both(URL, _body(pdpyras_trigger(routing_key=key)))
    assert bare == django and bare["status"].startswith("500") and stored == [0, 0]


def test_the_kick_and_request_finished_come_after_the_response(key, monkeypatch):
    from django.core import signals

    events = []
    monkeypatch.setattr(kick, "inbox_kick", lambda: events.append("kick"))

    def finished(**kwargs):
        events.append("finished")

    signals.request_finished.connect(finished)
    try:
        app = PagerDutyWSGI(LeanWSGIHandler())
        env = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": URL,
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "testserver",
            "wsgi.input": io.BytesIO(_body(pdpyras_trigger(routing_key=key))),
        }
        env["CONTENT_LENGTH"] = str(len(env["wsgi.input"].getvalue()))
        body = app(env, lambda status, headers: events.append(status))
        assert events == ["202 Accepted"]
        b"".join(body)
        body.close()
        assert events == ["202 Accepted", "kick", "finished"]
        events.clear()
        env["wsgi.input"], env["CONTENT_LENGTH"] = io.BytesIO(b"{"), "1"
        app(env, lambda status, headers: events.append(status)).close()
        assert events == ["400 Bad Request", "finished"]  # nothing stored, nothing to drain
    finally:
        signals.request_finished.disconnect(finished)


@override_settings(ALLOWED_HOSTS=["oncall.example.com"])
def test_a_host_outside_allowed_hosts_is_djangos_400(key):
    body = _body(pdpyras_trigger(routing_key=key, dedup_key="h"))
    (bare, django), stored = both(URL, body, HTTP_HOST="evil.example.net")
    assert bare == django and bare["status"].startswith("400") and stored == [0, 0]
    # The other intake paths (Django's handler behind the intake middleware) refuse it too.
    generic = call(LeanWSGIHandler(), "/integrations/generic/" + key + "/", body, HTTP_HOST="evil.example.net")
    assert generic["status"].startswith("400")
    (bare, django), stored = both(URL, body, HTTP_HOST="oncall.example.com")
    assert_same(bare, django)
    assert bare["status"].startswith("202") and stored == [1, 1]


@override_settings(ALLOWED_HOSTS=["oncall.example.com"])
def test_the_host_verdict_is_remembered_per_host(key, monkeypatch):
    from django.core.handlers.wsgi import WSGIRequest

    checks = []
    real = WSGIRequest.get_host
    monkeypatch.setattr(WSGIRequest, "get_host", lambda self: checks.append(1) or real(self))
    app = PagerDutyWSGI(LeanWSGIHandler())
    body = _body(pdpyras_trigger(routing_key=key, dedup_key="c"))
    for host in ["oncall.example.com", "oncall.example.com", "evil.example.net", "evil.example.net"]:
        call(app, URL, body, HTTP_HOST=host)
    assert len(checks) == 2
    with override_settings(ALLOWED_HOSTS=["evil.example.net"]):  # new settings, new verdicts
        assert call(app, URL, body, HTTP_HOST="evil.example.net")["status"].startswith("202")
