"""The team's Webhooks page: managers create (the secret shown once), read the delivery log, send again;
everyone else is refused, and another team's ids are 404."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from escalations.incidents import services as incidents
from escalations.models import WebhookDelivery, WebhookSubscription
from escalations.webhooks import services
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.216.34/hook"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_creates_a_webhook_and_the_secret_is_shown_only_in_that_answer(team):
    manager = MembershipFactory(team=team, role="manager").user
    client = _client(manager)
    response = client.post(
        reverse("portal:webhook_create", args=[team.slug]),
        {"url": PUBLIC, "events": ["incident.triggered", "incident.resolved"], "description": "chat bot"},
    )
    assert response.status_code == 201
    sub = WebhookSubscription.objects.get()
    assert sub.secret in response.content.decode()
    again = client.get(reverse("portal:webhook", args=[team.slug, sub.pk])).content.decode()
    assert sub.secret not in again and "incident.resolved" in again
    listing = client.get(reverse("portal:webhooks", args=[team.slug])).content.decode()
    assert "chat bot" in listing and sub.secret not in listing
    team_page = client.get(reverse("portal:team", args=[team.slug])).content.decode()
    assert reverse("portal:webhooks", args=[team.slug]) in team_page


def test_an_internal_url_is_a_form_error_not_a_webhook(team):
    manager = MembershipFactory(team=team, role="manager").user
    response = _client(manager).post(
        reverse("portal:webhook_create", args=[team.slug]),
        {"url": "http://127.0.0.1:6379/", "events": ["incident.triggered"]},
    )
    assert response.status_code == 400
    assert "internal address" in response.content.decode() or "loopback" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_the_delivery_log_shows_outcomes_and_sends_again(team):
    manager = MembershipFactory(team=team, role="manager").user
    sub = services.subscription_create(team=team, url=PUBLIC, events=["incident.triggered"], actor=manager)
    incidents.incident_trigger(team=team, title="Checkout down")
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.FAILED, attempts=31, response_status=503, error="HTTP 503: not a 2xx answer"
    )
    client = _client(manager)
    page = client.get(reverse("portal:webhook", args=[team.slug, sub.pk])).content.decode()
    assert "HTTP 503" in page and "31" in page and "Send again" in page and delivery.event.public_id in page
    response = client.post(reverse("portal:webhook_resend", args=[team.slug, sub.pk, delivery.pk]))
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING


def test_another_teams_delivery_or_webhook_is_404(team):
    manager = MembershipFactory(team=team, role="manager").user
    ours = services.subscription_create(team=team, url=PUBLIC, events=["incident.triggered"], actor=None)
    other_team = TeamFactory()
    theirs = services.subscription_create(team=other_team, url=PUBLIC, events=["incident.triggered"], actor=None)
    incidents.incident_trigger(team=other_team, title="Theirs")
    their_delivery = WebhookDelivery.objects.get(subscription=theirs)
    client = _client(manager)
    assert (
        client.post(reverse("portal:webhook_resend", args=[team.slug, ours.pk, their_delivery.pk])).status_code == 404
    )
    assert client.get(reverse("portal:webhook", args=[team.slug, theirs.pk])).status_code == 404
    assert client.get(reverse("portal:webhooks", args=[other_team.slug])).status_code == 404
    engineer = MembershipFactory(team=team, role="engineer").user
    assert _client(engineer).get(reverse("portal:webhooks", args=[team.slug])).status_code == 403
    their_delivery.refresh_from_db()
    assert their_delivery.status == WebhookDelivery.Status.PENDING and their_delivery.attempts == 0


def test_a_manager_edits_url_and_events_through_the_service(team):
    manager = MembershipFactory(team=team, role="manager").user
    sub = services.subscription_create(team=team, url=PUBLIC, events=["incident.triggered"], actor=manager)
    client = _client(manager)
    form = client.get(reverse("portal:webhook_edit", args=[team.slug, sub.pk])).content.decode()
    assert PUBLIC in form
    refused = client.post(
        reverse("portal:webhook_edit", args=[team.slug, sub.pk]),
        {"url": "http://10.0.0.1/", "events": ["incident.resolved"]},
    )
    assert refused.status_code == 400
    saved = client.post(
        reverse("portal:webhook_edit", args=[team.slug, sub.pk]),
        {"url": "https://93.184.216.34/v2", "events": ["incident.resolved", "incident.annotated"]},
    )
    assert saved.status_code == 302
    sub.refresh_from_db()
    assert (sub.url, sub.events) == ("https://93.184.216.34/v2", ["incident.annotated", "incident.resolved"])
