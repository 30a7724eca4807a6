"""The webhooks API: managers only, secrets shown once, ids of another team refused, the event body
documented in the OpenAPI schema."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse

from escalations.incidents import services as incidents
from escalations.models import WebhookDelivery, WebhookSubscription
from escalations.webhooks import events, services
from rotations.models import AuditEntry
from tests.escalations.api_helpers import api_client
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/backstop"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch):
    """hooks.example.com resolves to a public address (no network in tests)."""
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host.endswith("example.com"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr("escalations.webhooks.addresses.socket.getaddrinfo", fake)


def _list_url():
    return reverse("webhook-list")


def test_a_manager_creates_a_webhook_and_sees_the_secret_once(team):
    manager = MembershipFactory(team=team, role="manager").user
    client = api_client(manager)
    created = client.post(
        _list_url(), {"team": team.pk, "url": URL, "events": ["incident.triggered", "incident.resolved"]}, format="json"
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    detail = client.get(reverse("webhook-detail", args=[created.json()["id"]])).json()
    assert "secret" not in detail and detail["events"] == ["incident.triggered", "incident.resolved"]
    assert secret not in str(list(AuditEntry.objects.values_list("changes", flat=True)))
    rotated = client.post(reverse("webhook-rotate-secret", args=[detail["id"]])).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:6379/",
        "http://[::ffff:127.0.0.1]/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "ftp://hooks.example.com/",
        "http://user:pw@hooks.example.com/",
    ],
)
def test_internal_and_odd_urls_are_refused_with_a_field_error(team, url):
    manager = MembershipFactory(team=team, role="manager").user
    response = api_client(manager).post(
        _list_url(), {"team": team.pk, "url": url, "events": ["incident.triggered"]}, format="json"
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["url"]
    assert not WebhookSubscription.objects.exists()


def test_a_name_resolving_to_a_private_address_is_refused(team, monkeypatch):
    monkeypatch.setattr(
        "escalations.webhooks.addresses.socket.getaddrinfo",
        lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))],
    )
    with pytest.raises(Exception, match="10.1.2.3"):
        services.subscription_create(
            team=team, url="https://intranet.example.com/", events=["incident.triggered"], actor=None
        )


def test_private_targets_are_allowed_only_by_the_setting(team, settings):
    settings.BACKSTOP_WEBHOOKS_ALLOW_PRIVATE = True
    sub = services.subscription_create(team=team, url="http://127.0.0.1:9/", events=["incident.triggered"], actor=None)
    assert sub.pk


def test_readers_of_the_team_and_other_teams_see_nothing(team):
    sub = services.subscription_create(team=team, url=URL, events=["incident.triggered"], actor=None)
    other_manager = MembershipFactory(team=TeamFactory(), role="manager").user
    for user in (
        MembershipFactory(team=team, role="engineer").user,
        MembershipFactory(team=team, role="viewer").user,
        other_manager,
    ):
        client = api_client(user)
        assert client.get(_list_url()).json()["results"] == []
        assert client.get(reverse("webhook-detail", args=[sub.pk])).status_code == 404
        assert client.get(reverse("webhook-deliveries", args=[sub.pk])).status_code == 404
    refused = api_client(other_manager).post(
        _list_url(), {"team": team.pk, "url": URL, "events": ["incident.triggered"]}, format="json"
    )
    assert refused.status_code == 403
    moved = api_client(MembershipFactory(team=team, role="manager").user).patch(
        reverse("webhook-detail", args=[sub.pk]), {"team": TeamFactory().pk}, format="json"
    )
    assert moved.status_code == 400


def test_deliveries_and_resend_are_scoped_to_the_subscription(team):
    manager = MembershipFactory(team=team, role="manager").user
    sub = services.subscription_create(team=team, url=URL, events=["incident.triggered"], actor=manager)
    other_team = TeamFactory()
    other = services.subscription_create(team=other_team, url=URL, events=["incident.triggered"], actor=None)
    incidents.incident_trigger(team=team, title="Ours")
    incidents.incident_trigger(team=other_team, title="Theirs")
    ours = WebhookDelivery.objects.get(subscription=sub)
    theirs = WebhookDelivery.objects.get(subscription=other)
    WebhookDelivery.objects.filter(pk=ours.pk).update(status=WebhookDelivery.Status.FAILED)
    client = api_client(manager)
    log = client.get(reverse("webhook-deliveries", args=[sub.pk])).json()["results"]
    assert [d["id"] for d in log] == [ours.pk]
    assert log[0]["payload"]["type"] == "incident.triggered"
    assert log[0]["payload"]["data"]["incident"]["title"] == "Ours"
    assert client.post(reverse("webhook-resend", args=[sub.pk, theirs.pk])).status_code == 404
    assert client.post(reverse("webhook-resend", args=[other.pk, theirs.pk])).status_code == 404
    resent = client.post(reverse("webhook-resend", args=[sub.pk, ours.pk]))
    assert resent.status_code == 202 and resent.json()["status"] == "pending"


def test_unknown_events_and_empty_lists_are_400(team):
    manager = MembershipFactory(team=team, role="manager").user
    client = api_client(manager)
    for events_ in ([], ["incident.exploded"], "incident.triggered"):
        response = client.post(_list_url(), {"team": team.pk, "url": URL, "events": events_}, format="json")
        assert response.status_code == 400, events_


def test_the_event_body_and_signature_are_in_the_openapi_schema(staff, mfa_user):
    client = api_client(mfa_user(staff))
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    components = schema["components"]["schemas"]
    assert {"id", "type", "timestamp", "data"} <= set(components["WebhookEventBody"]["properties"])
    assert set(events.EVENT_TYPES) <= set(components["WebhookEventTypeEnum"]["enum"])
    create = schema["paths"]["/api/v1/webhooks/"]["post"]
    assert "callbacks" in create
    assert "webhook-signature" in schema["paths"]["/api/v1/webhooks/"]["get"]["description"]
