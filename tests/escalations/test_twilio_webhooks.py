"""Twilio delivery webhooks: signature checks, status callbacks, voice TwiML and keypresses."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from twilio.request_validator import RequestValidator

from escalations.models import Incident, Page, TimelineEvent
from portal.models import ContactMethod
from tests.factories import ContactMethodFactory, IncidentFactory, MembershipFactory, PageFactory, TeamFactory

pytestmark = pytest.mark.django_db


def signed_post(client, path, data, *, url=None, token=None):
    url = url or settings.PUBLIC_BASE_URL + path
    signature = RequestValidator(token or settings.TWILIO_AUTH_TOKEN).compute_signature(url, data)
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


def _sent_page(**kw):
    page = PageFactory(**kw)
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SENT, provider_id="SM123", sent_at=timezone.now())
    page.refresh_from_db()
    return page


def test_signed_status_callback_updates_the_page_and_a_retry_changes_nothing(client):
    page = _sent_page()
    path = f"/twilio/status/{page.pk}/"
    data = {"MessageSid": "SM123", "MessageStatus": "delivered", "To": page.destination}
    assert signed_post(client, path, data).status_code == 204
    page.refresh_from_db()
    assert page.status == Page.Status.DELIVERED
    events = TimelineEvent.objects.filter(incident=page.incident).count()
    assert signed_post(client, path, data).status_code == 204
    assert TimelineEvent.objects.filter(incident=page.incident).count() == events


@pytest.mark.parametrize("how", ["unsigned", "forged", "wrong_token", "internal_url", "tampered_body"])
def test_unsigned_or_forged_callbacks_are_refused_and_change_nothing(client, how):
    page = _sent_page()
    path = f"/twilio/status/{page.pk}/"
    data = {"MessageSid": "SM123", "MessageStatus": "failed"}
    if how == "unsigned":
        response = client.post(path, data)
    elif how == "forged":
        response = client.post(path, data, HTTP_X_TWILIO_SIGNATURE="bm90IGEgc2lnbmF0dXJl")
    elif how == "wrong_token":
        response = signed_post(client, path, data, token="some-other-token")
    elif how == "internal_url":
        # What Django sees behind the TLS proxy: http and its own host. Twilio never signs that.
        response = signed_post(client, path, data, url="http://testserver" + path)
    else:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
            settings.PUBLIC_BASE_URL + path, {**data, "MessageStatus": "delivered"}
        )
        response = client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403
    page.refresh_from_db()
    assert page.status == Page.Status.SENT
    assert not TimelineEvent.objects.filter(incident=page.incident).exists()


def test_signature_is_checked_against_the_public_https_url_even_over_plain_http(client):
    """Django sees http://testserver; Twilio signed https://backstop.example.com. Must pass."""
    page = _sent_page()
    path = f"/twilio/status/{page.pk}/?attempt=2"
    response = signed_post(client, path, {"MessageSid": "SM123", "MessageStatus": "delivered"})
    assert response.status_code == 204


def test_no_answer_callback_makes_the_next_rule_due_now(client, monkeypatch):
    from escalations.delivery import publish

    enqueued = []
    monkeypatch.setattr(publish, "page_enqueue", lambda ids, eta=None: enqueued.extend(ids))
    voice = ContactMethodFactory(kind=ContactMethod.Kind.VOICE)
    page = _sent_page(contact_method=voice, rule_index=0)
    sms = ContactMethodFactory(user=page.user)
    nxt = PageFactory(
        incident=page.incident, contact_method=sms, rule_index=1, due_at=timezone.now() + timedelta(minutes=5)
    )
    data = {"CallSid": "SM123", "CallStatus": "no-answer"}
    assert signed_post(client, f"/twilio/status/{page.pk}/", data).status_code == 204
    page.refresh_from_db()
    nxt.refresh_from_db()
    assert page.status == Page.Status.NO_ANSWER
    assert nxt.due_at <= timezone.now()
    assert enqueued == [nxt.pk]


def test_machine_answered_call_is_not_counted_as_reached(client, monkeypatch):
    from escalations.delivery import publish

    monkeypatch.setattr(publish, "page_enqueue", lambda ids, eta=None: None)
    voice = ContactMethodFactory(kind=ContactMethod.Kind.VOICE)
    page = _sent_page(contact_method=voice)
    data = {"CallSid": "SM123", "CallStatus": "completed", "AnsweredBy": "machine_end_beep"}
    assert signed_post(client, f"/twilio/status/{page.pk}/", data).status_code == 204
    page.refresh_from_db()
    assert page.status == Page.Status.NO_ANSWER
    assert TimelineEvent.objects.get(incident=page.incident, kind="page_failed").message.endswith("voicemail picked up")


# --- voice -----------------------------------------------------------------------------------


def _voice_page(**incident_kw):
    team = TeamFactory(name="Payments")
    voice = ContactMethodFactory(kind=ContactMethod.Kind.VOICE)
    MembershipFactory(team=team, user=voice.user, role="engineer")
    incident = IncidentFactory(team=team, title="DB down", **incident_kw)
    return _sent_page(incident=incident, contact_method=voice)


def test_voice_twiml_reads_the_incident_and_gathers_one_digit(client):
    page = _voice_page()
    response = signed_post(client, f"/twilio/voice/page/{page.pk}/", {"CallSid": "SM123", "AnsweredBy": "human"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"https://backstop.example.com/twilio/voice/page/{page.pk}/gather/"
    spoken = " ".join(s.text for s in gather.findall("Say"))
    assert f"Incident {page.incident_id} for team Payments: DB down" in spoken
    assert "Press 1 to acknowledge, 2 to escalate, 3 to resolve, or star to repeat" in spoken
    assert root.find("Hangup") is not None


def test_voice_twiml_for_a_voicemail_pickup_leaves_no_details(client, monkeypatch):
    from escalations.delivery import publish

    monkeypatch.setattr(publish, "page_enqueue", lambda ids, eta=None: None)
    page = _voice_page()
    response = signed_post(
        client, f"/twilio/voice/page/{page.pk}/", {"CallSid": "SM123", "AnsweredBy": "machine_start"}
    )
    root = ET.fromstring(response.content)
    assert root.find("Gather") is None and "DB down" not in response.content.decode()
    page.refresh_from_db()
    assert page.status == Page.Status.NO_ANSWER


def test_voice_twiml_unsigned_is_refused(client):
    page = _voice_page()
    assert client.post(f"/twilio/voice/page/{page.pk}/", {"CallSid": "SM123"}).status_code == 403


@pytest.mark.parametrize(
    ("digit", "status", "said"),
    [("1", Incident.Status.ACKNOWLEDGED, "acknowledged"), ("3", Incident.Status.RESOLVED, "resolved")],
)
def test_keypress_acts_on_the_incident_as_the_paged_person(client, digit, status, said):
    page = _voice_page()
    response = signed_post(client, f"/twilio/voice/page/{page.pk}/gather/", {"CallSid": "SM123", "Digits": digit})
    assert response.status_code == 200
    page.incident.refresh_from_db()
    assert page.incident.status == status
    assert f"Incident {page.incident_id} {said}" in response.content.decode()
    event = TimelineEvent.objects.filter(incident=page.incident, kind=status.value).get()
    assert event.actor == page.user and event.via == "voice"


def test_keypress_2_escalates(client, monkeypatch):
    from escalations.incidents import services

    calls = []
    monkeypatch.setattr(services, "incident_escalate", lambda **kw: calls.append(kw) or True)
    page = _voice_page()
    response = signed_post(client, f"/twilio/voice/page/{page.pk}/gather/", {"CallSid": "SM123", "Digits": "2"})
    assert response.status_code == 200
    assert calls == [{"incident": page.incident, "by": page.user, "via": "voice"}]
    assert f"Incident {page.incident_id} escalated" in response.content.decode()


def test_keypress_from_someone_without_rights_on_the_team_changes_nothing(client):
    page = _voice_page()
    page.user.memberships.all().delete()
    response = signed_post(client, f"/twilio/voice/page/{page.pk}/gather/", {"CallSid": "SM123", "Digits": "1"})
    assert response.status_code == 200
    page.incident.refresh_from_db()
    assert page.incident.status == Incident.Status.TRIGGERED


def test_star_repeats_and_other_keys_do_nothing(client):
    page = _voice_page()
    for digit in ("*", "9"):
        response = signed_post(client, f"/twilio/voice/page/{page.pk}/gather/", {"CallSid": "SM123", "Digits": digit})
        root = ET.fromstring(response.content)
        assert root.find("Redirect").text == f"https://backstop.example.com/twilio/voice/page/{page.pk}/"
    page.incident.refresh_from_db()
    assert page.incident.status == Incident.Status.TRIGGERED


def test_forged_keypress_does_not_acknowledge(client):
    page = _voice_page()
    response = client.post(f"/twilio/voice/page/{page.pk}/gather/", {"Digits": "1"}, HTTP_X_TWILIO_SIGNATURE="x")
    assert response.status_code == 403
    page.incident.refresh_from_db()
    assert page.incident.status == Incident.Status.TRIGGERED
