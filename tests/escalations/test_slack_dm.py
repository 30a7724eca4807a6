"""Paging by Slack DM: the same Page rows, claim, reconciliation and timeline as SMS, against the fake Slack API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from escalations.delivery.channels import page_reference_ids
from escalations.delivery.deliver import page_deliver
from escalations.delivery.reconcile import pages_reconcile_stuck
from escalations.incidents import services as incident_services
from escalations.incidents.advance import incident_advance
from escalations.models import Page, TimelineEvent
from escalations.slack.services import slack_contact_method_connect
from portal.models import ContactMethod
from tests.factories import (
    ContactMethodFactory,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    IncidentFactory,
    MembershipFactory,
    NotificationRuleFactory,
    PageFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def slack_page(fake_slack):
    user = UserFactory(full_name="Maria Ops")
    fake_slack.add_user("U0MARIA", user.email)
    method = ContactMethodFactory(user=user, kind=ContactMethod.Kind.SLACK, value="U0MARIA")
    team = TeamFactory(name="Payments")
    return PageFactory(contact_method=method, incident=IncidentFactory(team=team, title="DB down"))


def test_a_slack_page_is_one_dm_with_buttons_and_a_timeline_line(fake_slack, slack_page):
    assert page_deliver(page_id=slack_page.pk).result == "sent"
    assert page_deliver(page_id=slack_page.pk).result == "skipped"
    [dm] = fake_slack.messages("D0MARIA")
    assert page_reference_ids(dm["text"]) == {slack_page.pk}
    assert f"#{slack_page.incident_id} [Payments] DB down" in dm["text"]
    buttons = [e for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        (a, str(slack_page.incident_id)) for a in ("incident_acknowledge", "incident_escalate", "incident_resolve")
    ]
    slack_page.refresh_from_db()
    assert slack_page.status == Page.Status.SENT and slack_page.provider_id == f"D0MARIA:{dm['ts']}"
    [event] = TimelineEvent.objects.filter(incident=slack_page.incident, kind=TimelineEvent.Kind.PAGED)
    assert event.message == "Paged Maria Ops by Slack (U0MARIA)"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_a_timed_out_dm_is_found_at_slack_at_once_not_sent_again(fake_slack, slack_page, settings):
    fake_slack.hang_next("chat.postMessage", seconds=1.5)  # Slack posts it, the answer comes too late
    # The batch waits for the client's own 1 s timeout, so the outcome is the batch's, not a send thread's.
    settings.BACKSTOP_DELIVERY_SEND_WAIT = timedelta(seconds=5)
    # No answer in time: delivery asks Slack (the DM's history) at once and finds the page reference.
    assert page_deliver(page_id=slack_page.pk).result == "sent"
    slack_page.refresh_from_db()
    [dm] = fake_slack.messages("D0MARIA")
    assert slack_page.status == Page.Status.SENT and slack_page.provider_id == f"D0MARIA:{dm['ts']}"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    [checked] = TimelineEvent.objects.filter(incident=slack_page.incident, kind=TimelineEvent.Kind.PAGE_STATUS)
    assert "it has the message" in checked.message
    later = timezone.now() + settings.BACKSTOP_PAGE_STUCK_AFTER + timedelta(seconds=1)
    assert pages_reconcile_stuck(now=later) == 0
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_a_dm_slack_never_got_is_sent_again_once(fake_slack, slack_page, settings):
    Page.objects.filter(pk=slack_page.pk).update(
        status=Page.Status.SENDING, attempts=1, claimed_at=timezone.now() - timedelta(minutes=10)
    )
    assert pages_reconcile_stuck(now=timezone.now()) == 1
    assert page_deliver(page_id=slack_page.pk).result == "sent"
    assert len(fake_slack.messages("D0MARIA")) == 1


def test_rate_limited_dm_is_retried_later(fake_slack, slack_page, settings):
    from escalations.slack.client import _build

    settings.BACKSTOP_SLACK_RATE_LIMIT_RETRIES = 0
    _build.cache_clear()
    fake_slack.rate_limit(1, retry_after=30)
    outcome = page_deliver(page_id=slack_page.pk)
    assert outcome.result == "retry"
    assert fake_slack.messages("D0MARIA") == []
    [failed] = TimelineEvent.objects.filter(incident=slack_page.incident, kind=TimelineEvent.Kind.PAGE_FAILED)
    assert "by Slack failed (attempt 1)" in failed.message


def test_an_unknown_slack_user_fails_the_page_and_the_next_rule_takes_over(fake_slack):
    user = UserFactory()
    method = ContactMethodFactory(user=user, kind=ContactMethod.Kind.SLACK, value="U0GONE")
    page = PageFactory(contact_method=method)
    assert page_deliver(page_id=page.pk).result == "failed"
    [failed] = TimelineEvent.objects.filter(incident=page.incident, kind=TimelineEvent.Kind.PAGE_FAILED)
    assert "by Slack" in failed.message and "user_not_found" in failed.message


def test_an_escalation_pages_by_slack_under_the_persons_rule(fake_slack, monkeypatch):
    from escalations.delivery import publish as delivery_publish

    monkeypatch.setattr(delivery_publish, "page_enqueue", lambda *a, **k: None)
    team = TeamFactory()
    user = MembershipFactory(team=team, role="engineer").user
    fake_slack.add_user("U0ENG", user.email)
    policy = EscalationPolicyFactory(team=team)
    EscalationTargetFactory(step=EscalationStepFactory(policy=policy, order=0), kind="user", position="", user=user)
    team.escalation_policy = policy
    team.save()
    method = slack_contact_method_connect(user=user, now=timezone.now())
    NotificationRuleFactory(contact_method=method, user=user)
    incident = incident_services.incident_trigger(team=team, title="Latency").incident
    incident_advance(incident_id=incident.pk)
    [page] = Page.objects.filter(incident=incident)
    assert (page.channel, page.destination) == ("slack", "U0ENG")
    assert page_deliver(page_id=page.pk).result == "sent"
    assert len(fake_slack.messages("D0ENG")) == 1


def test_connecting_slack_finds_the_person_by_email(fake_slack):
    from django.core.exceptions import ValidationError

    user = UserFactory()
    with pytest.raises(ValidationError, match="Slack has no account"):
        slack_contact_method_connect(user=user, now=timezone.now())
    fake_slack.add_user("U0NEW", user.email)
    method = slack_contact_method_connect(user=user, now=timezone.now())
    assert (method.kind, method.value, method.is_verified) == ("slack", "U0NEW", True)
    assert slack_contact_method_connect(user=user, now=timezone.now()).pk == method.pk
    assert [c["args"]["email"] for c in fake_slack.calls_to("users.lookupByEmail")] == [user.email] * 3
