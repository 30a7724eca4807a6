"""Which incident changes become webhook events, written in the transaction of the change (no sending
here: the outbox rows are the subject)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalations.delivery.record import _record_failure
from escalations.incidents import advance
from escalations.incidents import services as incidents
from escalations.models import Page, WebhookDelivery, WebhookEvent
from escalations.webhooks import events, services
from tests.escalations.test_services import person, policy_for
from tests.factories import T0, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

MIN = timedelta(minutes=1)
PUBLIC = "https://93.184.216.34/hook"


def _types(team) -> list[str]:
    return list(WebhookEvent.objects.filter(team=team).order_by("occurred_at", "pk").values_list("type", flat=True))


def test_the_policy_escalating_and_a_failed_page_are_events():
    team = TeamFactory()
    alice, bob = person(), person()
    policy_for(team, (5, [alice]), (5, [bob]))
    services.subscription_create(team=team, url=PUBLIC, events=list(events.EVENT_TYPES), actor=None)
    incident = incidents.incident_trigger(team=team, title="Database down", now=T0).incident
    advance.incident_advance(incident_id=incident.pk, now=T0)
    assert _types(team) == ["incident.triggered"]  # the first step is not an escalation
    advance.escalations_sweep(now=T0 + 5 * MIN)
    assert _types(team) == ["incident.triggered", "incident.escalated"]
    escalated = WebhookEvent.objects.get(type="incident.escalated").payload["data"]
    assert escalated["escalation"]["step"] == 2 and escalated["escalation"]["user_ids"] == [bob.pk]
    page = Page.objects.filter(incident=incident, user=bob).first()
    _record_failure(page, [page], "Twilio 21211: invalid number", T0 + 6 * MIN)
    assert _types(team)[-1] == "incident.page_failed"
    failed = WebhookEvent.objects.filter(type="incident.page_failed").get().payload["data"]
    assert failed["page"] == {"id": page.pk, "channel": page.channel, "user_id": bob.pk}


def test_manual_escalation_and_reassignment_are_one_event_each():
    team = TeamFactory()
    alice, bob = person(), person()
    manager = MembershipFactory(team=team, role="manager").user
    policy_for(team, (5, [alice]), (5, [bob]))
    services.subscription_create(team=team, url=PUBLIC, events=list(events.EVENT_TYPES), actor=None)
    incident = incidents.incident_trigger(team=team, title="Database down", now=T0).incident
    advance.incident_advance(incident_id=incident.pk, now=T0)
    incidents.incident_acknowledge(incident=incident, by=manager, via="web", now=T0 + MIN)
    incidents.incident_escalate(incident=incident, by=manager, via="web", now=T0 + 2 * MIN)
    MembershipFactory(team=team, user=alice, role="engineer")
    incidents.incident_reassign(incident=incident, by=manager, to_users=[alice], via="web", now=T0 + 3 * MIN)
    assert _types(team) == [
        "incident.triggered",
        "incident.acknowledged",
        "incident.escalated",
        "incident.reassigned",
    ]


def test_only_the_chosen_events_of_the_subscribing_team_and_only_enabled_webhooks():
    team, other = TeamFactory(), TeamFactory()
    chosen = services.subscription_create(team=team, url=PUBLIC, events=[events.RESOLVED], actor=None)
    disabled = services.subscription_create(team=team, url=PUBLIC, events=[events.TRIGGERED], actor=None)
    services.subscription_update(subscription=disabled, actor=None, enabled=False)
    incident = incidents.incident_trigger(team=team, title="One").incident
    incidents.incident_resolve(incident=incident, by=None, via="api")
    incidents.incident_trigger(team=other, title="Elsewhere")
    assert list(WebhookDelivery.objects.values_list("subscription_id", "event__type")) == [
        (chosen.pk, "incident.resolved")
    ]


def test_kinds_nobody_can_subscribe_to_cost_no_query():
    team = TeamFactory()
    services.subscription_create(team=team, url=PUBLIC, events=list(events.EVENT_TYPES), actor=None)
    incident = incidents.incident_trigger(team=team, title="Repeated", dedup_key="k").incident
    with CaptureQueriesContext(connection) as queries:
        incidents.incident_trigger(team=team, title="Repeated", dedup_key="k")  # an "alert" row
    assert not any("webhook" in q["sql"] for q in queries.captured_queries)
    assert WebhookEvent.objects.filter(incident=incident).count() == 1


def test_a_note_without_a_surrounding_transaction_commits_with_its_event():
    team = TeamFactory()
    services.subscription_create(team=team, url=PUBLIC, events=[events.ANNOTATED], actor=None)
    incident = incidents.incident_trigger(team=team, title="One").incident
    note = incidents.incident_note_add(incident=incident, by=UserFactory(), text="Rolling back", via="web")
    event = WebhookEvent.objects.get()
    assert event.timeline_event_id == note.pk and event.payload["data"]["note"]["content"] == "Rolling back"
