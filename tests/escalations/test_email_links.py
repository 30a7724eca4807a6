"""Signed one-click acknowledge / resolve links in paging e-mails: GET confirms, POST acts once."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import mail, signing
from django.test import Client
from django.utils import timezone

from escalations.delivery.deliver import page_deliver
from escalations.models import EmailActionUse, Incident, TimelineEvent
from portal.models import ContactMethod
from rotations.models import Membership
from tests.factories import ContactMethodFactory, IncidentFactory, MembershipFactory, PageFactory, TeamFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"(Acknowledge|Resolve): (https://backstop\.example\.com(/email/action/[^/\s]+/))")


@pytest.fixture
def paged():
    team = TeamFactory(name="Payments")
    email = ContactMethodFactory(kind=ContactMethod.Kind.EMAIL, value="jonas@example.com")
    MembershipFactory(team=team, user=email.user, role=Membership.Role.ENGINEER)
    incident = IncidentFactory(team=team, title="Disk full")
    page = PageFactory(contact_method=email, incident=incident)
    assert page_deliver(page_id=page.pk).result == "sent"
    [msg] = mail.outbox
    links = {label.lower(): path for label, _, path in LINK.findall(msg.body)}
    return page, incident, links, msg


def test_the_email_carries_signed_links_and_no_reply_instructions(paged):
    _, incident, links, msg = paged
    assert set(links) == {"acknowledge", "resolve"}
    assert "Reply" not in msg.body and f"{incident.pk}A" not in msg.body


def test_opening_the_link_only_asks_for_confirmation(paged):
    _, incident, links, _ = paged
    response = Client().get(links["acknowledge"])
    assert response.status_code == 200
    assert b'method="post"' in response.content
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED and not EmailActionUse.objects.exists()


def test_confirming_acknowledges_as_the_paged_person_exactly_once(paged):
    page, incident, links, _ = paged
    client = Client(enforce_csrf_checks=True)  # as a browser: the confirmation page's form carries the token
    client.get(links["acknowledge"])
    token = client.cookies["csrftoken"].value
    response = client.post(links["acknowledge"], {"csrfmiddlewaretoken": token})
    assert response.status_code == 200, response.content
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED and incident.acknowledged_by == page.user
    event = TimelineEvent.objects.get(incident=incident, kind=TimelineEvent.Kind.ACKNOWLEDGED)
    assert event.via == TimelineEvent.Via.EMAIL and event.actor == page.user

    again = client.post(links["acknowledge"], {"csrfmiddlewaretoken": token})
    assert again.status_code == 410 and b"already been used" in again.content
    assert client.get(links["acknowledge"]).status_code == 410
    assert TimelineEvent.objects.filter(incident=incident, kind=TimelineEvent.Kind.ACKNOWLEDGED).count() == 1

    # The other link of the same e-mail is still good.
    assert Client().post(links["resolve"]).status_code == 200
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.resolved_by == page.user


def test_an_expired_link_is_refused(paged, settings, monkeypatch):
    _, incident, links, _ = paged
    settings.BACKSTOP_EMAIL_LINK_MAX_AGE = 60
    later = (timezone.now() + timedelta(seconds=61)).timestamp()
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: later))  # the signature's clock
    response = Client().post(links["acknowledge"])
    assert response.status_code == 410 and b"expired" in response.content
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


@pytest.mark.parametrize("tamper", ["incident", "signature"])
def test_a_tampered_link_is_refused(paged, tamper):
    page, incident, links, _ = paged
    token = links["acknowledge"].split("/")[-2]
    if tamper == "incident":
        other = IncidentFactory(team=incident.team)
        payload = signing.loads(token, salt="backstop.delivery.email-action")
        forged = signing.dumps({**payload, "i": other.pk}, salt="not-the-salt")
        path = f"/email/action/{forged}/"
    else:
        path = f"/email/action/{token[:-2]}xx/"
    response = Client().post(path)
    assert response.status_code == 410 and b"not valid" in response.content
    assert not EmailActionUse.objects.exists()
    assert not Incident.objects.exclude(status=Incident.Status.TRIGGERED).exists()


def test_a_person_removed_from_the_team_is_refused(paged):
    page, incident, links, _ = paged
    Membership.objects.filter(user=page.user, team=incident.team).delete()
    response = Client().post(links["acknowledge"])
    assert response.status_code == 410 and b"may no longer act" in response.content
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED and not EmailActionUse.objects.exists()
