"""The outbox (Twilio not configured) is each person's own phone: it shows and acts only as the viewer.

Anyone can add any number as an unverified method, so a number proves nothing: the attacker below adds
the engineer's verified number to their own profile and must still see none of the engineer's pages or
codes, and must not be able to act as the engineer by replying from that number.
"""

from __future__ import annotations

import pytest
from django.test import TestCase
from django.urls import reverse

from escalations.delivery.deliver import page_deliver
from escalations.models import OutboxMessage
from portal import services as profile_services
from portal.models import ContactMethod
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox_mode(settings):
    settings.TWILIO_ACCOUNT_SID = ""


@pytest.fixture
def delivered(outbox_mode, incident, role_users):
    """The incident's page to the engineer, delivered into the outbox."""
    page = incident.pages.get(user=role_users["engineer"])
    page_deliver(page_id=page.pk)
    message = OutboxMessage.objects.get(page=page)
    assert message.recipient == role_users["engineer"]
    return message


@pytest.fixture
def attacker(team, role_users, delivered):
    """Another engineer of the same team who added the victim's number as an unverified method."""
    user = MembershipFactory(team=team, role="engineer").user
    ContactMethod.objects.create(user=user, kind="sms", value=delivered.to)
    return user


def _send_code(method: ContactMethod) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        profile_services.contact_method_verification_send(method=method)


def test_a_colleagues_number_shows_none_of_their_pages_or_codes(login, role_users, delivered, attacker):
    victim = role_users["engineer"]
    # The victim verifies a second number: its code must be theirs alone.
    new = ContactMethod.objects.create(user=victim, kind="sms", value="+15550109876")
    _send_code(new)
    ContactMethod.objects.create(user=attacker, kind="sms", value="+15550109876")
    body = login(attacker).get(reverse("portal:outbox")).content.decode()
    assert delivered.body not in body
    assert "verification code" not in body
    own = login(victim).get(reverse("portal:outbox")).content.decode()
    assert "Checkout is down" in own and "verification code" in own


def test_staff_see_only_their_own_and_messages_to_people_outside_backstop(login, role_users, delivered):
    staff = role_users["staff"]
    OutboxMessage.objects.create(channel="sms", to="+15550142001", body="Your reference is R-1", kind="notice")
    body = login(staff).get(reverse("portal:outbox")).content.decode()
    assert delivered.body not in body
    assert "Your reference is R-1" in body


def test_a_verification_code_is_shown_to_its_requester_for_that_method_only(login, role_users, outbox_mode):
    victim, attacker = role_users["engineer"], role_users["manager"]
    victims = ContactMethod.objects.create(user=victim, kind="sms", value="+15550104444")
    attackers = ContactMethod.objects.create(user=attacker, kind="sms", value="+15550104444")
    _send_code(victims)
    _send_code(attackers)
    codes = list(OutboxMessage.objects.filter(verifies__isnull=False).order_by("pk"))
    assert [(c.recipient, c.verifies) for c in codes] == [(victim, victims), (attacker, attackers)]
    attacker_page = login(attacker).get(reverse("portal:outbox"))
    assert [m.pk for m in attacker_page.context["items"]] == [codes[1].pk]


def test_replying_from_a_colleagues_number_is_refused(login, role_users, incident, delivered, attacker):
    client = login(attacker)
    for body in (f"{incident.pk}A", "A", f"{incident.pk}R", "STOP"):
        response = client.post(reverse("portal:outbox_sms_reply"), {"from_number": delivered.to, "body": body})
        assert response.status_code == 403, body
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert not incident.timeline.filter(kind__in=["acknowledged", "resolved"]).exists()
    assert not ContactMethod.objects.filter(value=delivered.to, opted_out_at__isnull=False).exists()


def test_once_verified_a_shared_number_still_acts_only_as_the_viewer(login, role_users, incident, delivered, attacker):
    """Both verify the same number (outbox mode shows the code to whoever asked): still only themselves."""
    ContactMethod.objects.filter(user=attacker).update(verified_at=delivered.created_at)
    client = login(attacker)
    assert delivered.body not in client.get(reverse("portal:outbox")).content.decode()
    answer = client.post(reverse("portal:outbox_sms_reply"), {"from_number": delivered.to, "body": "A"}, follow=True)
    assert "no open incident was paged to you" in answer.content.decode()
    client.post(reverse("portal:outbox_sms_reply"), {"from_number": delivered.to, "body": "STOP"})
    victims = ContactMethod.objects.get(user=role_users["engineer"], value=delivered.to)
    assert victims.opted_out_at is None
    assert ContactMethod.objects.get(user=attacker, value=delivered.to).opted_out_at is not None
    # An explicit reply acts, as the attacker (an engineer of the team may work it), never as the victim.
    client.post(reverse("portal:outbox_sms_reply"), {"from_number": delivered.to, "body": f"{incident.pk}A"})
    assert incident.timeline.get(kind="acknowledged").actor == attacker


def test_staff_cannot_press_a_key_on_someone_elses_call(login, role_users, incident, outbox_mode):
    page = incident.pages.get(user=role_users["engineer"])
    item = OutboxMessage.objects.create(
        channel="voice",
        to=page.destination,
        body="Incident call",
        page=page,
        incident=incident,
        recipient=role_users["engineer"],
    )
    response = login(role_users["staff"]).post(reverse("portal:outbox_voice_key", args=[item.pk]), {"key": "1"})
    assert response.status_code == 404
    assert not incident.timeline.filter(kind="acknowledged").exists()
