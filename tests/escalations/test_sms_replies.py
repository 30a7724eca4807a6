import pytest

from escalations.delivery.sms_replies import sms_reply_handle, sms_reply_parse
from escalations.incidents import services
from escalations.models import Incident
from portal.models import ContactMethod
from tests.factories import T0, ContactMethodFactory, MembershipFactory, TeamFactory, UserFactory


@pytest.mark.parametrize(
    ("body", "action", "number"),
    [
        ("123A", "acknowledge", 123),
        ("123 a", "acknowledge", 123),
        ("#123R", "resolve", 123),
        ("ack 77", "acknowledge", 77),
        ("Escalate 9", "escalate", 9),
        ("A", "acknowledge", None),
        ("ACK", "acknowledge", None),
        ("12e.", "escalate", 12),
        ("STOP", "stop", None),
        ("start", "start", None),
        ("help", "help", None),
        ("lol", None, None),
        ("123X", None, None),
        ("", None, None),
    ],
)
def test_parse(body, action, number):
    parsed = sms_reply_parse(body)
    assert (parsed.action, parsed.incident_id) == (action, number)


@pytest.fixture
def oncall(db):
    team = TeamFactory()
    user = MembershipFactory(team=team, role="engineer").user
    ContactMethodFactory(user=user, kind="sms", value="+15550001111")
    incident = services.incident_trigger(team=team, title="API 500s", now=T0).incident
    return team, user, incident


def test_acknowledge_by_code(oncall):
    _, user, incident = oncall
    reply = sms_reply_handle(from_number="+15550001111", body=f"{incident.pk}A", now=T0)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.acknowledged_by == user
    assert "acknowledged" in reply
    assert incident.timeline.filter(kind="acknowledged", via="sms").exists()
    assert "already acknowledged" in sms_reply_handle(from_number="+15550001111", body=f"{incident.pk}A", now=T0)


def test_resolve_by_code(oncall):
    _, _, incident = oncall
    sms_reply_handle(from_number="+15550001111", body=f"{incident.pk} R", now=T0)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED


def test_unknown_number_and_unknown_code_get_clear_answers(oncall):
    _, _, incident = oncall
    assert "not a verified contact" in sms_reply_handle(from_number="+15559999999", body=f"{incident.pk}A")
    assert "did not understand" in sms_reply_handle(from_number="+15550001111", body="what?")
    assert "no incident #999999" in sms_reply_handle(from_number="+15550001111", body="999999A")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_outsiders_and_viewers_cannot_act(oncall):
    _, _, incident = oncall
    outsider = UserFactory()
    ContactMethodFactory(user=outsider, kind="sms", value="+15550002222")
    assert "not allowed" in sms_reply_handle(from_number="+15550002222", body=f"{incident.pk}A")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_stop_and_start(oncall):
    sms_reply_handle(from_number="+15550001111", body="STOP", now=T0)
    assert ContactMethod.objects.get(value="+15550001111").opted_out_at == T0
    sms_reply_handle(from_number="+15550001111", body="START", now=T0)
    assert ContactMethod.objects.get(value="+15550001111").opted_out_at is None


def _signed(client, data, url_path="/twilio/sms/"):
    from django.conf import settings
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
        settings.PUBLIC_BASE_URL + url_path, data
    )
    return client.post("/twilio/sms/", data, HTTP_X_TWILIO_SIGNATURE=signature)


def test_sms_webhook_acknowledges_and_answers_with_twiml(client, oncall):
    _, _, incident = oncall
    data = {"From": "+15550001111", "To": "+15005550006", "Body": f"{incident.pk}A", "MessageSid": "SM1"}
    response = _signed(client, data)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Message>" in response.content and b"acknowledged" in response.content
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED


def test_bare_ack_acts_on_the_newest_incident_paged_to_the_number(client, oncall):
    from django.utils import timezone

    from escalations.models import Page

    team, user, incident = oncall
    Page.objects.create(
        incident=incident,
        cycle=0,
        step=0,
        loop=0,
        user=user,
        rule_index=0,
        channel="sms",
        destination="+15550001111",
        due_at=T0,
        status="sent",
        sent_at=timezone.now(),
    )
    _signed(client, {"From": "+15550001111", "Body": "A", "MessageSid": "SM2"})
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED


@pytest.mark.parametrize("how", ["unsigned", "other_url", "tampered"])
def test_sms_webhook_refuses_unsigned_forged_or_replayed_elsewhere(client, oncall, how):
    from django.conf import settings
    from twilio.request_validator import RequestValidator

    _, _, incident = oncall
    data = {"From": "+15550001111", "Body": f"{incident.pk}R", "MessageSid": "SM3"}
    if how == "unsigned":
        response = client.post("/twilio/sms/", data)
    elif how == "other_url":
        # A genuine signature for another endpoint, replayed here.
        response = _signed(client, data, url_path="/twilio/status/1/")
    else:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
            settings.PUBLIC_BASE_URL + "/twilio/sms/", {**data, "Body": "HELP"}
        )
        response = client.post("/twilio/sms/", data, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED
