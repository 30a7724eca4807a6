"""The intake inbox: one INSERT per accepted event, applied exactly once, in order, by the drain."""

import json
import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalations.intake import drain as intake_drain
from escalations.intake import inbox, kick, parsers
from escalations.intake import tasks as intake_tasks
from escalations.models import Alert, ChangeEvent, InboxEvent, Incident, TimelineEvent
from portal.models import JobRun
from tests.escalations.inbox_helpers import drain
from tests.escalations.intake_payloads import am_message, pdpyras_action, pdpyras_change, pdpyras_trigger
from tests.factories import IntegrationFactory, MaintenanceWindowFactory, TeamFactory

pytestmark = pytest.mark.django_db
URL = "/integrations/pagerduty/v2/enqueue"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def integration(team):
    return IntegrationFactory(team=team)


@pytest.fixture
def kicks(monkeypatch):
    """Count drain-task publications instead of sending them."""
    sent = []
    monkeypatch.setattr(kick, "inbox_kick_publish", lambda: sent.append(1))
    return sent


def accept(client, body, url=URL):
    """POST without draining: the event waits in the inbox."""
    response = client.post(url, data=json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 202), response.content
    return response


def pending():
    return InboxEvent.objects.filter(processed_at__isnull=True).count()


def test_accepting_is_one_statement_and_applies_nothing_yet(client, integration, kicks):
    with CaptureQueriesContext(connection) as queries:
        r = accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    # (Inside the test's transaction the INSERT also gets a savepoint; in autocommit it does not.)
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO escalations_inboxevent")
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": "k"}
    row = InboxEvent.objects.get()
    assert (row.integration, row.kind, row.action, row.dedup_key, row.processed_at) == (
        integration,
        "pagerduty",
        "trigger",
        "k",
        None,
    )
    assert row.payload == pdpyras_trigger(routing_key=integration.key, dedup_key="k")  # stored as received
    assert Incident.objects.count() == 0 and Alert.objects.count() == 0
    assert drain() == 1
    assert Incident.objects.get().dedup_key == "k"
    assert InboxEvent.objects.get().processed_at is not None


def test_a_generated_dedup_key_is_stored_with_the_event(client, integration, kicks):
    key = accept(client, pdpyras_trigger(routing_key=integration.key)).json()["dedup_key"]
    assert InboxEvent.objects.get().dedup_key == key and "dedup_key" not in InboxEvent.objects.get().payload
    drain()
    assert Incident.objects.get().dedup_key == key and Alert.objects.get().dedup_key == key


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (URL, {"routing_key": "0" * 32, "event_action": "trigger", "payload": {"summary": "x"}}),
        (URL, {"event_action": "resolve"}),
        ("/integrations/pagerduty/v2/change/enqueue", {"routing_key": "0" * 32, "payload": {}}),
        (URL, '{"routing_key": "x", "payload": {"summary": NaN}'),
    ],
)
def test_malformed_events_are_400_and_leave_no_inbox_row(client, integration, url, body, kicks):
    if isinstance(body, dict) and "routing_key" in body:
        body["routing_key"] = integration.key
    response = client.post(
        url, data=body if isinstance(body, str) else json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["status"] == "invalid event"
    assert InboxEvent.objects.count() == 0


def test_values_postgresql_cannot_store_are_a_400_not_a_500(client, integration, kicks):
    # Python's parser accepts NaN and "\u0000"; jsonb does not. Nothing is stored either way.
    template = json.dumps(pdpyras_trigger(routing_key=integration.key, custom_details={"x": "VALUE"}))
    for value in ("NaN", '"a\\u0000b"'):
        body = template.replace('"VALUE"', value)
        response = client.post(URL, data=body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert "cannot be stored" in response.json()["errors"][0]
    assert InboxEvent.objects.count() == 0


def test_disabled_and_unknown_keys_store_nothing(client, team, kicks):
    disabled = IntegrationFactory(team=team, enabled=False)
    r = client.post(URL, data=json.dumps(pdpyras_trigger(routing_key=disabled.key)), content_type="application/json")
    assert r.status_code == 400 and r.json()["errors"] == [inbox.DISABLED]
    r = client.post(URL, data=json.dumps(pdpyras_trigger(routing_key="f" * 32)), content_type="application/json")
    assert r.status_code == 400 and r.json()["errors"] == ["Invalid routing key"]
    generic = IntegrationFactory(team=team, kind="generic", enabled=False)
    r = client.post(f"/integrations/generic/{generic.key}/", data={"summary": "x"})
    assert r.status_code == 400 and "disabled" in r.json()["message"]
    assert client.post(f"/integrations/generic/{'f' * 32}/", data={"summary": "x"}).status_code == 404
    # The key is checked first even when the body is bad too (as before the inbox).
    assert client.post(f"/integrations/generic/{'f' * 32}/", data={"details": "x"}).status_code == 404
    assert InboxEvent.objects.count() == 0


def test_an_accepted_event_is_applied_even_if_the_integration_is_disabled_before_the_drain(client, integration, kicks):
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    integration.enabled = False
    integration.save()
    drain()
    assert Incident.objects.get().dedup_key == "k"


def test_trigger_then_resolve_of_one_key_in_one_batch_ends_resolved(client, integration, kicks):
    key = integration.key
    accept(client, pdpyras_trigger(routing_key=key, dedup_key="k"))
    accept(client, pdpyras_trigger(routing_key=key, dedup_key="k"))
    accept(client, pdpyras_action("resolve", "k", routing_key=key))
    assert intake_drain.intake_events_process(now=timezone.now(), limit=100) == 3
    incident = Incident.objects.get()
    assert (incident.status, incident.alert_count) == ("resolved", 2)
    assert list(Alert.objects.order_by("id").values_list("action", "status", "incident")) == [
        ("trigger", "firing", incident.pk),
        ("trigger", "firing", incident.pk),
        ("resolve", "resolved", incident.pk),
    ]


def test_trigger_resolve_trigger_in_one_batch_opens_a_second_incident(client, integration, kicks):
    key = integration.key
    for body in (
        pdpyras_trigger(routing_key=key, dedup_key="k"),
        pdpyras_action("acknowledge", "k", routing_key=key),
        pdpyras_trigger(routing_key=key, dedup_key="k"),
        pdpyras_action("resolve", "k", routing_key=key),
        pdpyras_trigger(routing_key=key, dedup_key="k"),
        pdpyras_trigger(routing_key=key, dedup_key="k"),
    ):
        accept(client, body)
    drain()
    first, second = Incident.objects.order_by("id")
    assert (first.status, first.alert_count, second.status, second.alert_count) == ("resolved", 2, "triggered", 2)
    assert second.timeline.filter(kind="alert").count() == 1
    assert list(first.timeline.values_list("kind", flat=True)) == [  # in time order
        "created",
        "acknowledged",
        "alert",
        "resolved",
    ]


def test_repeated_triggers_of_an_open_incident_collapse_into_few_statements(
    client, integration, django_assert_max_num_queries, kicks
):
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    drain()
    for _ in range(50):
        accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    with django_assert_max_num_queries(12):
        assert drain() == 50
    incident = Incident.objects.get()
    assert incident.alert_count == 51
    assert incident.timeline.filter(kind="alert").count() == 50
    assert Alert.objects.filter(incident=incident, status="firing").count() == 51
    assert all(row.data == {"integration": integration.pk} for row in incident.timeline.filter(kind="alert"))


def test_an_incident_open_before_the_batch_is_counted_then_acknowledged_and_resolved_in_it(client, integration, kicks):
    key = integration.key
    accept(client, pdpyras_trigger(routing_key=key, dedup_key="k"))
    other = accept(client, pdpyras_trigger(routing_key=key, dedup_key="other"))
    assert other.status_code == 202
    drain()
    for body in (
        pdpyras_trigger(routing_key=key, dedup_key="k"),
        pdpyras_trigger(routing_key=key, dedup_key="other"),
        pdpyras_action("acknowledge", "k", routing_key=key),
        pdpyras_trigger(routing_key=key, dedup_key="k"),
        pdpyras_action("resolve", "k", routing_key=key),
        pdpyras_trigger(routing_key=key, dedup_key="other"),
    ):
        accept(client, body)
    latest = InboxEvent.objects.filter(dedup_key="other").latest("id").received_at
    assert drain() == 6
    k, second = Incident.objects.get(dedup_key="k"), Incident.objects.get(dedup_key="other")
    assert (k.status, k.alert_count) == ("resolved", 3)
    assert (second.status, second.alert_count, second.updated_at) == ("triggered", 3, latest)
    assert list(k.timeline.values_list("kind", flat=True)) == ["created", "alert", "acknowledged", "alert", "resolved"]


def test_a_crash_between_batches_applies_nothing_twice_and_loses_nothing(client, integration, monkeypatch, kicks):
    for _ in range(5):
        accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    real_mark = intake_drain._mark
    calls = []

    def mark_then_die(rows, now):
        calls.append(len(rows))
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        real_mark(rows, now)

    monkeypatch.setattr(intake_drain, "_mark", mark_then_die)
    with pytest.raises(OperationalError):
        intake_drain.inbox_drain(limit=2)
    assert calls == [2, 2] and pending() == 3  # the second batch rolled back with its effects
    assert Incident.objects.get().alert_count == 2
    monkeypatch.setattr(intake_drain, "_mark", real_mark)
    drain()
    assert drain() == 0  # re-running applies nothing
    assert Incident.objects.get().alert_count == 5
    assert Alert.objects.count() == 5 and TimelineEvent.objects.filter(kind="alert").count() == 4


def test_an_event_that_cannot_be_applied_is_set_aside_and_the_rest_go_on(client, integration, monkeypatch, kicks):
    for name in ("a", "poison", "b"):
        accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key=name))
    real_parse = parsers.pagerduty_event_parse

    def parse(body):
        if body.get("dedup_key") == "poison":
            raise RuntimeError("bug")
        return real_parse(body)

    monkeypatch.setattr(parsers, "pagerduty_event_parse", parse)
    assert drain() == 3
    assert sorted(Incident.objects.values_list("dedup_key", flat=True)) == ["a", "b"]
    poison = InboxEvent.objects.get(dedup_key="poison")
    assert poison.processed_at is not None and "bug" in poison.error


def test_maintenance_is_judged_when_the_event_arrived(client, team, integration, kicks):
    now = timezone.now()
    MaintenanceWindowFactory(team=team, start=now - timedelta(minutes=5), end=now + timedelta(hours=1))
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="in-window"))
    other_team = IntegrationFactory(team=TeamFactory())
    accept(client, pdpyras_trigger(routing_key=other_team.key, dedup_key="other-team"))
    drain()
    suppressed = Incident.objects.get(dedup_key="in-window")
    assert suppressed.suppressed and suppressed.next_action_at is None
    assert Alert.objects.get(dedup_key="in-window").status == "suppressed"
    assert not Incident.objects.get(dedup_key="other-team").suppressed


def test_change_alertmanager_and_generic_events_go_through_the_inbox(client, team, integration, kicks):
    accept(client, pdpyras_change(routing_key=integration.key), url="/integrations/pagerduty/v2/change/enqueue")
    am = IntegrationFactory(team=team, kind="alertmanager")
    accept(client, am_message(("firing", "firing")), url=f"/integrations/alertmanager/{am.key}/")
    generic = IntegrationFactory(team=team, kind="generic")
    r = client.post(f"/integrations/generic/{generic.key}/", data={"summary": "Disk 91%", "dedup_key": "disk"})
    assert r.status_code == 202 and r.json()["dedup_key"] == "disk"
    assert list(InboxEvent.objects.values_list("kind", "action")) == [
        ("change", ""),
        ("alertmanager", "firing"),
        ("generic", "trigger"),
    ]
    assert InboxEvent.objects.get(kind="generic").payload == {"summary": "Disk 91%", "dedup_key": "disk"}
    assert (ChangeEvent.objects.count(), Incident.objects.count()) == (0, 0)
    drain()
    assert ChangeEvent.objects.get().summary == "Deployed v1.2.3"
    assert sorted(Incident.objects.values_list("source", "title")) == [("alert", "Disk 91%"), ("alert", "HighLatency")]


def test_one_kick_per_debounce_window(client, integration, kicks, settings):
    settings.BACKSTOP_INBOX_KICK_MS = 60_000
    for _ in range(5):
        accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    assert kicks == [1]
    kick.kick_debounce.reset()  # as another web process, whose own window is over…
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    assert kicks == [1]  # …sees the shared claim: one drain task per window across processes
    cache.clear()  # the shared window ends
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    assert kicks == [1]  # but this process tried less than a window ago: no cache round trip either
    kick.kick_debounce.reset()
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    assert kicks == [1, 1]


def test_only_stored_events_kick_and_a_process_asks_the_cache_once_per_window(
    client, team, integration, kicks, monkeypatch, settings
):
    # A window far longer than three requests take, even on a loaded machine: the count is the subject.
    settings.BACKSTOP_INBOX_KICK_MS = 60_000
    claims = []
    real_claim = kick.kick_claim
    monkeypatch.setattr(kick, "kick_claim", lambda backend: claims.append(1) or real_claim(backend))
    client.post(URL, data="{", content_type="application/json")
    client.post(URL, data=json.dumps(pdpyras_trigger(routing_key="f" * 32)), content_type="application/json")
    assert (claims, kicks) == ([], [])  # refused: nothing stored, nothing to drain
    for _ in range(3):
        accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    assert (claims, kicks) == ([1], [1])


def test_kick_debounce_windows():
    debounce = kick.KickDebounce()
    assert debounce.due(100.0, 0.25)
    assert not debounce.due(100.125, 0.25) and not debounce.due(100.2, 0.25)
    assert debounce.due(100.25, 0.25)  # a full window after the last try, not after the last event
    assert not debounce.due(100.375, 0.25) and debounce.due(100.5, 0.25)


def test_a_kick_is_sent_after_the_response_and_a_cache_outage_is_harmless(client, integration, kicks, monkeypatch):
    response = client.post(
        URL, data=json.dumps(pdpyras_trigger(routing_key=integration.key)), content_type="application/json"
    )
    assert response.status_code == 202 and kicks == [1]  # the test client closes the response, as servers do
    kick.kick_debounce.reset()
    cache.clear()

    def down(backend):
        raise ConnectionError("cache down")

    monkeypatch.setattr(kick, "kick_claim", down)
    assert accept(client, pdpyras_trigger(routing_key=integration.key)).status_code == 202
    assert kicks == [1] and pending() == 2  # stored; the beat drain applies it


def test_the_kick_task_and_the_beat_safety_net(settings):
    assert settings.CELERY_TASK_ROUTES["escalations.intake_tasks.inbox_drain"] == {"queue": "celery"}
    entry = settings.CELERY_BEAT_SCHEDULE["intake-inbox-drain"]
    assert entry["task"] == "escalations.intake_tasks.inbox_drain_periodic" and entry["schedule"] == 1.0
    from config.celery import app

    assert app.amqp.router.route({}, entry["task"])["queue"].name == "periodic"
    assert app.amqp.router.route({}, "escalations.intake_tasks.inbox_drain")["queue"].name == "celery"


def test_the_periodic_drain_applies_what_no_kick_announced(client, integration, kicks, monkeypatch):
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    assert intake_tasks.inbox_drain_periodic() == 1
    assert Incident.objects.get().dedup_key == "k"
    assert JobRun.objects.get(name="intake-inbox-drain").last_success_at is not None


def test_retention_deletes_applied_events_only(client, integration, settings, kicks):
    settings.BACKSTOP_INBOX_RETENTION = timedelta(hours=1)
    for name in ("old", "recent", "failed"):
        accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key=name))
    now = timezone.now()
    InboxEvent.objects.filter(dedup_key="old").update(processed_at=now - timedelta(hours=2))
    InboxEvent.objects.filter(dedup_key="failed").update(processed_at=now - timedelta(hours=2), error="boom")
    accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key="pending"))
    InboxEvent.objects.filter(dedup_key="recent").update(processed_at=now - timedelta(minutes=5))
    assert inbox.inbox_purge(now=now) == 1
    assert sorted(InboxEvent.objects.values_list("dedup_key", flat=True)) == ["failed", "pending", "recent"]
    assert intake_tasks.inbox_purge() == 0


@pytest.mark.django_db(transaction=True)  # as under gunicorn: the handler opens and closes connections
def test_the_lean_wsgi_path_serves_intake_and_the_portal_keeps_its_middleware(integration, kicks):
    import io
    import sys

    from config.wsgi import application

    def call(path, method="GET", body=b""):
        seen = {}
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "testserver",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
        }
        chunks = application(environ, lambda status, headers: seen.update(status=status, headers=dict(headers)))
        seen["body"] = b"".join(chunks)
        chunks.close()
        return seen

    r = call(URL, "POST", json.dumps(pdpyras_trigger(routing_key=integration.key, dedup_key="w")).encode())
    assert r["status"].startswith("202"), r["body"][:2000]
    assert json.loads(r["body"])["dedup_key"] == "w"
    assert "X-Frame-Options" not in r["headers"]  # no clickjacking middleware on this path
    assert InboxEvent.objects.get().dedup_key == "w"
    assert call("/healthz")["headers"]["X-Frame-Options"] == "DENY"


@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_apply_each_event_once_and_in_order(client, monkeypatch):
    monkeypatch.setattr(kick, "inbox_kick_publish", lambda: None)
    team = TeamFactory()
    integration = IntegrationFactory(team=team)
    keys = [f"k{i}" for i in range(5)]
    for round_ in range(8):
        for key in keys:
            accept(client, pdpyras_trigger(routing_key=integration.key, dedup_key=key))
        if round_ % 3 == 2:  # resolve every key now and then: later triggers must open new incidents
            for key in keys:
                accept(client, pdpyras_action("resolve", key, routing_key=integration.key))
    total = InboxEvent.objects.count()
    errors = []

    def run():
        try:
            intake_drain.inbox_drain(limit=7)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pending() == 0 and Alert.objects.count() == total
    # Rounds 0-2 then resolve, 3-5 then resolve, 6-7 open: three incidents per key, as applied serially.
    for key in keys:
        statuses = list(Incident.objects.filter(dedup_key=key).order_by("id").values_list("status", "alert_count"))
        assert statuses == [("resolved", 3), ("resolved", 3), ("triggered", 2)], (key, statuses)
    connection.close()
