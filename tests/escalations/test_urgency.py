"""Urgency through the database: severity mapped per integration, raised by worse alerts and by
time, and held outside support hours until they begin (the sweep honours the stored state)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from escalations.incidents import services
from escalations.incidents.advance import escalations_sweep
from escalations.intake.apply import pagerduty_event_process
from escalations.models import Incident, Page, TimelineEvent
from portal.models import ContactMethod, NotificationRule
from tests.escalations.inbox_helpers import drain, post_and_drain
from tests.escalations.intake_payloads import am_message, pdpyras_trigger
from tests.factories import (
    ContactMethodFactory,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    IntegrationFactory,
    NotificationRuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
PD_URL = "/integrations/pagerduty/v2/enqueue"
OFFICE = {"time_zone": "Europe/Berlin", "days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def responder(team):
    """One person paged by SMS for high urgency and by e-mail for low."""
    user = UserFactory()
    sms = ContactMethodFactory(user=user, kind=ContactMethod.Kind.SMS)
    email = ContactMethodFactory(user=user, kind=ContactMethod.Kind.EMAIL, value="r@example.com")
    NotificationRuleFactory(contact_method=sms, urgency=NotificationRule.Urgency.HIGH)
    NotificationRuleFactory(contact_method=email, urgency=NotificationRule.Urgency.LOW, delay=timedelta(minutes=30))
    return user


def policy_for(team, user, **fields):
    policy = EscalationPolicyFactory(team=team, **fields)
    for order in (0, 1):
        step = EscalationStepFactory(policy=policy, order=order, delay=timedelta(minutes=10))
        EscalationTargetFactory(step=step, kind="user", user=user, position="")
    team.escalation_policy = policy
    team.save(update_fields=["escalation_policy"])
    return policy


def channels(incident):
    return sorted(Page.objects.filter(incident=incident).exclude(status="canceled").values_list("step", "channel"))


# --------------------------------------------------------------------------- mapping per integration


@pytest.mark.parametrize(
    ("severity", "urgency"), [("critical", "high"), ("error", "high"), ("warning", "low"), ("info", "low")]
)
def test_pagerduty_severity_sets_the_urgency(client, team, severity, urgency):
    integration = IntegrationFactory(team=team)
    body = pdpyras_trigger(routing_key=integration.key, dedup_key="k", severity=severity)
    post_and_drain(client, PD_URL, data=json.dumps(body), content_type="application/json")
    assert Incident.objects.get().urgency == urgency


def test_alertmanager_severity_label_sets_the_urgency(client, team):
    integration = IntegrationFactory(team=team, kind="alertmanager")
    body = am_message()
    body["commonLabels"]["severity"] = "warning"
    for alert in body["alerts"]:
        alert["labels"]["severity"] = "warning"
    r = post_and_drain(
        client, f"/integrations/alertmanager/{integration.key}/", data=json.dumps(body), content_type="application/json"
    )
    assert r.status_code == 200
    assert Incident.objects.get().urgency == "low"


@pytest.mark.parametrize(
    ("fields", "urgency"),
    [
        ({"severity": "info"}, "low"),
        ({}, "high"),
        ({"severity": "info", "urgency": "high"}, "high"),
        ({"urgency": "low"}, "low"),
    ],
)
def test_generic_webhook_urgency_or_severity(client, team, fields, urgency):
    integration = IntegrationFactory(team=team, kind="generic")
    body = {"summary": "Backup failed", "dedup_key": "b", **fields}
    post_and_drain(
        client, f"/integrations/generic/{integration.key}/", data=json.dumps(body), content_type="application/json"
    )
    assert Incident.objects.get().urgency == urgency


def test_generic_webhook_refuses_an_unknown_urgency(client, team):
    integration = IntegrationFactory(team=team, kind="generic")
    r = client.post(
        f"/integrations/generic/{integration.key}/",
        data=json.dumps({"summary": "x", "urgency": "urgent"}),
        content_type="application/json",
    )
    assert r.status_code == 400 and "urgency" in r.content.decode()


@pytest.mark.parametrize(
    ("rule", "severity", "urgency"), [("always_low", "critical", "low"), ("always_high", "info", "high")]
)
def test_the_integration_rule_overrides_the_severity(client, team, rule, severity, urgency):
    integration = IntegrationFactory(team=team, urgency_rule=rule)
    body = pdpyras_trigger(routing_key=integration.key, dedup_key="k", severity=severity)
    post_and_drain(client, PD_URL, data=json.dumps(body), content_type="application/json")
    assert Incident.objects.get().urgency == urgency


# --------------------------------------------------------------------------- a worse alert raises


def test_a_repeated_alert_with_higher_severity_raises_and_never_lowers(client, team, responder):
    policy_for(team, responder)
    integration = IntegrationFactory(team=team)

    def send(severity):
        body = pdpyras_trigger(routing_key=integration.key, dedup_key="db", severity=severity)
        assert client.post(PD_URL, data=json.dumps(body), content_type="application/json").status_code == 202

    send("warning")
    drain()
    escalations_sweep()  # the advance the drain publishes on commit
    assert channels(Incident.objects.get()) == [(0, "email")]
    send("info")
    send("critical")  # a repeat in one drain batch: the row-locked path
    drain()
    incident = Incident.objects.get()
    assert (incident.urgency, incident.alert_count) == ("high", 3)
    assert incident.timeline.filter(kind=TimelineEvent.Kind.URGENCY_RAISED).count() == 1
    # The low-urgency e-mail gave way to the high-urgency SMS.
    assert channels(incident) == [(32001, "sms")]
    send("info")  # a later, milder alert lowers nothing
    drain()
    incident.refresh_from_db()
    assert (incident.urgency, incident.alert_count) == ("high", 4)


def test_the_single_event_path_raises_too(team, responder):
    policy_for(team, responder)
    integration = IntegrationFactory(team=team)
    now = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    pagerduty_event_process(
        integration_key=integration.key, body=pdpyras_trigger(dedup_key="x", severity="info"), now=now
    )
    escalations_sweep(now=now)
    incident = Incident.objects.get()
    assert incident.urgency == "low"
    pagerduty_event_process(
        integration_key=integration.key,
        body=pdpyras_trigger(dedup_key="x", severity="error"),
        now=now + timedelta(minutes=1),
    )
    incident.refresh_from_db()
    assert incident.urgency == "high"
    assert channels(incident) == [(32001, "sms")]


# --------------------------------------------------------------------------- support hours


def test_low_urgency_outside_support_hours_waits_for_them_across_dst(team, responder):
    policy_for(team, responder, support_hours=OFFICE)
    friday_evening = datetime(2024, 3, 29, 19, 0, tzinfo=UTC)  # 20:00 CET, before the clocks go forward
    incident = services.incident_trigger(team=team, title="Disk 80%", urgency="low", now=friday_evening).incident
    monday = datetime(2024, 4, 1, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert (incident.deferred_until, incident.next_action_at) == (monday, monday)
    assert "support hours" in incident.timeline.get(kind="created").message
    assert not Page.objects.exists()
    escalations_sweep(now=monday - timedelta(seconds=1))
    assert not Page.objects.exists()
    escalations_sweep(now=monday)
    incident.refresh_from_db()
    assert incident.deferred_until is None and incident.step == 0
    assert channels(incident) == [(0, "email")]
    # High urgency at the same moment pages at once.
    high = services.incident_trigger(team=team, title="DB down", now=friday_evening).incident
    escalations_sweep(now=friday_evening)
    assert channels(high) == [(0, "sms")]


def test_unacknowledged_low_urgency_is_raised_by_the_sweep(team, responder):
    policy_for(team, responder, raise_urgency_after=timedelta(minutes=5))
    t0 = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    incident = services.incident_trigger(team=team, title="Queue slow", urgency="low", now=t0).incident
    escalations_sweep(now=t0)
    assert channels(incident) == [(0, "email")]
    escalations_sweep(now=t0 + timedelta(minutes=5))
    incident.refresh_from_db()
    assert incident.urgency == "high"
    raised = incident.timeline.get(kind=TimelineEvent.Kind.URGENCY_RAISED)
    assert "not acknowledged within 5m" in raised.message
    assert channels(incident) == [(32001, "sms")]  # the pending low-urgency e-mail was canceled
    escalations_sweep(now=t0 + timedelta(minutes=10))
    assert channels(incident) == [(1, "sms"), (32001, "sms")]  # high-urgency rules from then on


def test_acknowledged_in_time_is_not_raised(team, responder):
    policy_for(team, responder, raise_urgency_after=timedelta(minutes=5))
    t0 = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    incident = services.incident_trigger(team=team, title="Queue slow", urgency="low", now=t0).incident
    services.incident_acknowledge(incident=incident, by=responder, via="web", now=t0 + timedelta(minutes=2))
    escalations_sweep(now=t0 + timedelta(minutes=30))
    incident.refresh_from_db()
    assert incident.urgency == "low"


# --------------------------------------------------------------------------- API and portal


def test_api_takes_the_urgency_fields_and_refuses_bad_support_hours(team, role_users):
    from tests.escalations.api_helpers import api_client

    client = api_client(role_users["manager"])
    body = {"team": team.pk, "name": "Office", "support_hours": OFFICE, "raise_urgency_after": "00:30:00"}
    r = client.post("/api/v1/escalation-policies/", body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["support_hours"] == OFFICE and r.json()["raise_urgency_after"] == "00:30:00"
    bad = {**body, "name": "Bad", "support_hours": {**OFFICE, "time_zone": "Mars/Olympus"}}
    r = client.post("/api/v1/escalation-policies/", bad, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "support_hours"
    r = client.post(
        "/api/v1/integrations/",
        {"team": team.pk, "name": "PD", "kind": "pagerduty", "urgency_rule": "always_low"},
        format="json",
    )
    assert r.status_code == 201 and r.json()["urgency_rule"] == "always_low"
    r = client.post(
        "/api/v1/integrations/",
        {"team": team.pk, "name": "PD2", "kind": "pagerduty", "urgency_rule": "loud"},
        format="json",
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "urgency_rule"


def test_portal_policy_form_saves_support_hours_through_the_service(client, team, role_users):
    from escalations.models import EscalationPolicy

    client.force_login(role_users["manager"])
    form = {
        "name": "Office",
        "repeat": "0",
        "raise_urgency_minutes": "20",
        "support_days": ["0", "1", "2", "3", "4"],
        "support_start": "09:00",
        "support_end": "17:00",
        "support_time_zone": "Europe/Berlin",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-0-delay_minutes": "5",
        "steps-0-whole_team": "on",
        "steps-0-ORDER": "1",
    }
    r = client.post(f"/teams/{team.slug}/policies/new", form)
    assert r.status_code == 302, r.content.decode()[:2000]
    policy = EscalationPolicy.objects.get(name="Office")
    assert policy.support_hours == OFFICE and policy.raise_urgency_after == timedelta(minutes=20)
    r = client.post(f"/teams/{team.slug}/policies/new", {**form, "name": "Bad", "support_end": "08:00"})
    assert r.status_code == 400 and not EscalationPolicy.objects.filter(name="Bad").exists()
