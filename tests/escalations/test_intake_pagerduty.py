"""PagerDuty Events API v2 and Change Events over HTTP, with the bodies pdpyras and Alertmanager send."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from escalations.incidents import advance
from escalations.intake import apply as intake_apply
from escalations.models import Alert, ChangeEvent, Incident, Page, TimelineEvent
from tests.escalations.inbox_helpers import post_and_drain
from tests.escalations.intake_payloads import (
    alertmanager_pagerduty,
    pdpyras_action,
    pdpyras_change,
    pdpyras_trigger,
)
from tests.factories import (
    T0,
    ContactMethodFactory,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    IntegrationFactory,
    MaintenanceWindowFactory,
    NotificationRuleFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
URL = "/integrations/pagerduty/v2/enqueue"
CHANGE_URL = "/integrations/pagerduty/v2/change/enqueue"
HEADERS = {"HTTP_USER_AGENT": "pdpyras/5.4.1 python-requests/2.32"}


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def integration(team):
    return IntegrationFactory(team=team)


def post(client, body, url=URL, **extra):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return post_and_drain(client, url, data=data, content_type="application/json", **HEADERS, **extra)


def counts():
    return Incident.objects.count(), Alert.objects.count(), TimelineEvent.objects.count(), ChangeEvent.objects.count()


def test_trigger_ack_resolve_by_dedup_key(client, integration):
    key = integration.key
    r = post(client, pdpyras_trigger(routing_key=key, dedup_key="disk-db-1", custom_details={"free": "3%"}))
    assert r.status_code == 202
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": "disk-db-1"}
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.source, incident.dedup_key, incident.team) == (
        "Disk full on db-1",
        "critical",
        "alert",
        "disk-db-1",
        integration.team,
    )
    assert '"free": "3%"' in incident.details

    assert post(client, pdpyras_action("acknowledge", "disk-db-1", routing_key=key)).status_code == 202
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_by is None
    assert incident.timeline.filter(kind="acknowledged", via="integration").exists()

    r = post(client, pdpyras_action("resolve", "disk-db-1", routing_key=key))
    assert r.status_code == 202 and r.json()["dedup_key"] == "disk-db-1"
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert list(Alert.objects.order_by("id").values_list("action", "status")) == [
        ("trigger", "firing"),
        ("acknowledge", "acknowledged"),
        ("resolve", "resolved"),
    ]


def test_trigger_without_dedup_key_gets_one_returned(client, integration):
    r = post(client, pdpyras_trigger(routing_key=integration.key))
    assert r.status_code == 202
    key = r.json()["dedup_key"]
    assert len(key) == 32 and Incident.objects.get().dedup_key == key
    # The generated key works for the follow-up resolve, as with PagerDuty.
    post(client, pdpyras_action("resolve", key, routing_key=integration.key))
    assert Incident.objects.get().status == "resolved"


def test_retrigger_on_open_key_appends_alert(client, integration):
    for _ in range(3):
        assert post(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k")).status_code == 202
    incident = Incident.objects.get()
    assert incident.alert_count == 3
    assert incident.timeline.filter(kind="alert").count() == 2
    assert Alert.objects.filter(incident=incident).count() == 3
    # Each raw event is kept once, on its Alert row; the timeline row points at the integration.
    assert all(row.data == {"integration": integration.pk} for row in incident.timeline.filter(kind="alert"))
    assert all(a.payload["dedup_key"] == "k" for a in Alert.objects.filter(incident=incident))


def test_trigger_after_resolve_opens_new_incident(client, integration):
    post(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    post(client, pdpyras_action("resolve", "k", routing_key=integration.key))
    post(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    first, second = Incident.objects.order_by("id")
    assert (first.status, second.status) == ("resolved", "triggered")


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_ack_resolve_unknown_key_is_success_noop(client, integration, action):
    r = post(client, pdpyras_action(action, "never-seen", routing_key=integration.key))
    assert r.status_code == 202 and r.json()["dedup_key"] == "never-seen"
    assert Incident.objects.count() == 0
    assert Alert.objects.get().status == "ignored"


def test_alertmanager_pagerduty_config_trigger_and_resolve_with_payload(client, integration):
    assert post(client, alertmanager_pagerduty("trigger", routing_key=integration.key)).status_code == 202
    incident = Incident.objects.get()
    assert incident.title == "[FIRING:1] HighLatency api (page)"
    assert {"href": "http://alertmanager:9093/#/alerts?receiver=pd", "text": "Alertmanager"} in incident.links
    assert post(client, alertmanager_pagerduty("resolve", routing_key=integration.key)).status_code == 202
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_trigger_pages_via_the_engine(client, team, integration):
    user = UserFactory()
    NotificationRuleFactory(user=user, contact_method=ContactMethodFactory(user=user), delay=timedelta(0))
    policy = EscalationPolicyFactory(team=team)
    EscalationTargetFactory(step=EscalationStepFactory(policy=policy, order=0), kind="user", position="", user=user)
    team.escalation_policy = policy
    team.save()
    post(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k"))
    incident = Incident.objects.get()
    assert incident.next_action_at is not None and not incident.suppressed
    advance.incident_advance(incident_id=incident.pk, now=incident.next_action_at)
    assert Page.objects.filter(incident=incident, user=user).count() == 1


def test_integration_policy_override_is_used(client, team):
    override = EscalationPolicyFactory(team=team)
    integration = IntegrationFactory(team=team, policy=override)
    post(client, pdpyras_trigger(routing_key=integration.key))
    assert Incident.objects.get().policy == override


def test_maintenance_window_suppresses_and_pages_nobody(team, integration):
    user = UserFactory()
    NotificationRuleFactory(user=user, contact_method=ContactMethodFactory(user=user), delay=timedelta(0))
    policy = EscalationPolicyFactory(team=team)
    EscalationTargetFactory(step=EscalationStepFactory(policy=policy, order=0), kind="user", position="", user=user)
    team.escalation_policy = policy
    team.save()
    MaintenanceWindowFactory(team=team, start=T0, end=T0 + timedelta(hours=1))
    result = intake_apply.pagerduty_event_process(
        integration_key=None, body=pdpyras_trigger(routing_key=integration.key), now=T0 + timedelta(minutes=5)
    )
    assert result.suppressed and result.incident.suppressed
    assert Alert.objects.get().status == "suppressed"
    assert advance.incident_advance(incident_id=result.incident.pk, now=T0 + timedelta(hours=3)) is None
    assert Page.objects.count() == 0
    # After the window: a new key pages normally.
    after = intake_apply.pagerduty_event_process(
        integration_key=None, body=pdpyras_trigger(routing_key=integration.key), now=T0 + timedelta(hours=2)
    )
    assert not after.suppressed and after.incident.next_action_at is not None


def test_maintenance_window_scoped_to_another_integration_does_not_apply(team, integration):
    MaintenanceWindowFactory(team=team, integration=IntegrationFactory(team=team), start=T0)
    assert not intake_apply.maintenance_active(team=team, integration=integration, now=T0 + timedelta(minutes=1))
    MaintenanceWindowFactory(team=team, integration=integration, start=T0)
    assert intake_apply.maintenance_active(team=team, integration=integration, now=T0 + timedelta(minutes=1))
    assert not intake_apply.maintenance_active(team=team, integration=integration, now=T0 + timedelta(hours=3))


def test_trigger_checks_maintenance_scope_and_sees_a_new_window_at_once(team, integration):
    def trigger(minutes, key):
        return intake_apply.pagerduty_event_process(
            integration_key=None,
            body=pdpyras_trigger(routing_key=integration.key, dedup_key=key),
            now=T0 + timedelta(minutes=minutes),
        )

    MaintenanceWindowFactory(team=TeamFactory(), start=T0)  # another team's, team-wide
    MaintenanceWindowFactory(team=team, integration=IntegrationFactory(team=team), start=T0)
    assert not trigger(1, "a").suppressed
    MaintenanceWindowFactory(team=team, integration=integration, start=T0)
    assert trigger(2, "b").suppressed
    assert not trigger(3 * 60, "c").suppressed  # the window (2 hours) is over
    MaintenanceWindowFactory(team=team, start=T0 + timedelta(hours=4))  # team-wide, later
    assert not trigger(4 * 60 - 1, "d").suppressed
    assert trigger(4 * 60, "e").suppressed


def test_change_event_recorded_never_pages(client, integration):
    before = counts()
    r = post(
        client,
        pdpyras_change(routing_key=integration.key, links=[{"href": "https://ci/1", "text": "Build"}]),
        url=CHANGE_URL,
    )
    assert r.status_code == 202 and r.json() == {"status": "success", "message": "Change event processed"}
    change = ChangeEvent.objects.get()
    assert (change.team, change.summary, change.source, change.links) == (
        integration.team,
        "Deployed v1.2.3",
        "ci",
        [{"href": "https://ci/1", "text": "Build"}],
    )
    assert counts()[:3] == before[:3]
    assert Page.objects.count() == 0


def assert_invalid(response, expected_error=None):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid"
    assert isinstance(body["errors"], list) and body["errors"]
    if expected_error:
        assert expected_error in body["errors"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"payload": {"source": "x", "severity": "info"}}, "'payload.summary' is missing or blank"),
        ({"payload": {"summary": "x", "severity": "info"}}, "'payload.source' is missing or blank"),
        (
            {"payload": {"summary": "x", "source": "y", "severity": "sev1"}},
            "'payload.severity' is invalid (must be one of critical, error, warning, info)",
        ),
        ({"routing_key": "abc"}, "Length of 'routing_key' is incorrect (should be 32 characters)"),
        ({"payload": {"summary": ["x"], "source": 1, "severity": None}}, "'payload.summary' must be a string"),
        ({"event_action": None}, "'event_action' is missing or blank"),
    ],
)
def test_invalid_events_400_and_nothing_stored(client, integration, body, error):
    event = {"routing_key": integration.key, "event_action": "trigger"}
    event.update(body)
    before = counts()
    assert_invalid(post(client, event), error)
    assert counts() == before


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not json",
        b'{"routing_key": "abc", "event_action": "trig',
        b"",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b"null",
        b'"string"',
    ],
)
def test_non_json_truncated_and_non_object_bodies(client, integration, raw):
    before = counts()
    assert_invalid(post(client, raw))
    assert counts() == before


def test_unknown_routing_key_400(client, integration):
    assert_invalid(post(client, pdpyras_trigger(routing_key="f" * 32)), "Invalid routing key")
    assert Incident.objects.count() == 0


def test_disabled_integration_400_with_clear_message(client, integration):
    integration.enabled = False
    integration.save()
    response = post(client, pdpyras_trigger(routing_key=integration.key))
    assert_invalid(response)
    assert "disabled" in response.json()["errors"][0]
    assert Incident.objects.count() == 0


def test_wrong_kind_integration_is_an_invalid_key(client, team):
    am = IntegrationFactory(team=team, kind="alertmanager")
    assert_invalid(post(client, pdpyras_trigger(routing_key=am.key)), "Invalid routing key")


def test_failure_inside_the_transaction_stores_nothing(integration, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database went away")

    # The Alert row is written after the incident: make it fail and check the incident is gone too.
    monkeypatch.setattr(Alert.objects, "create", boom)
    before = counts()
    with pytest.raises(RuntimeError):
        intake_apply.pagerduty_event_process(integration_key=None, body=pdpyras_trigger(routing_key=integration.key))
    assert counts() == before


@override_settings(BACKSTOP_INTAKE_MAX_BYTES=2048)
def test_413_for_huge_body_by_content_length_and_by_size(client, integration):
    big = pdpyras_trigger(routing_key=integration.key, custom_details={"blob": "x" * 5000})
    before = counts()
    response = post(client, big)
    assert response.status_code == 413 and response.json()["status"] == "invalid event"
    # A lying Content-Length: the body is still read no further than the limit.
    response = post(client, big, CONTENT_LENGTH="100")
    assert response.status_code in (400, 413)
    assert counts() == before


REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": settings.CELERY_BROKER_URL,
        "KEY_PREFIX": settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] + "throttle-test",
    }
}


@pytest.mark.parametrize("caches", [None, REDIS_CACHE], ids=["locmem", "redis"])
@override_settings(BACKSTOP_INTAKE_RATE="3/min")
def test_429_when_the_integration_is_throttled(client, integration, team, caches):
    with override_settings(**({"CACHES": caches} if caches else {})):
        cache.clear()
        _throttled_after_three(client, integration, team)


def _throttled_after_three(client, integration, team):
    codes = [post(client, pdpyras_trigger(routing_key=integration.key, dedup_key="k")).status_code for _ in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    throttled = post(client, pdpyras_trigger(routing_key=integration.key))
    assert throttled.json()["status"] == "throttle exceeded" and throttled["Retry-After"]
    # Another integration has its own budget.
    other = IntegrationFactory(team=team)
    assert post(client, pdpyras_trigger(routing_key=other.key)).status_code == 202
    assert Incident.objects.get(dedup_key="k").alert_count == 3


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405
