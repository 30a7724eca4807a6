"""The emergency line end to end through signed Twilio webhooks: voicemail -> one escalating incident."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from escalations.incidents import advance, services
from escalations.models import (
    BlockedNumber,
    CallRecord,
    CustomerContact,
    CustomerPhone,
    Incident,
    Page,
    PhoneMenuOption,
    TimelineEvent,
)
from tests.escalations.phone_support import (
    CALLER,
    call_params,
    make_line,
    paged_team,
    recording_params,
    twilio_post,
)

pytestmark = pytest.mark.django_db

SID = "CA" + "1" * 32
TRANSCRIPT = "Checkout is down for all our stores, please call back."


@pytest.fixture
def team_engineer():
    return paged_team()


@pytest.fixture
def line(team_engineer):
    return make_line(team_engineer[0])


def incoming(client, call_sid=SID, **kw):
    return twilio_post(client, "phone_line_incoming", call_params(call_sid, CallStatus="ringing", **kw))


def piece(client, kind, call_sid=SID, duration=14, transcript=TRANSCRIPT, transcript_status="completed"):
    if kind == "recorded":
        return twilio_post(
            client,
            "phone_line_recorded",
            recording_params(call_sid, duration=duration, CallStatus="in-progress", Digits="#"),
        )
    if kind == "recording_status":
        return twilio_post(
            client,
            "phone_line_recording_status",
            recording_params(call_sid, duration=duration, RecordingStatus="completed", RecordingSource="RecordVerb"),
        )
    if kind == "transcription":
        params = recording_params(
            call_sid,
            TranscriptionSid="TR" + "2" * 32,
            TranscriptionStatus=transcript_status,
            TranscriptionText=transcript if transcript_status == "completed" else "",
        )
        params.pop("RecordingDuration")  # Twilio's transcription callback does not carry it
        return twilio_post(client, "phone_line_transcription", params)
    if kind == "completed":
        return twilio_post(client, "phone_line_status", call_params(call_sid, CallStatus="completed", CallDuration=30))
    raise AssertionError(kind)


def twiml(response) -> ET.Element:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content)


# --------------------------------------------------------------------- any order, retried


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["recorded", "recording_status", "transcription", "completed"]))
)
def test_every_callback_order_with_retries_makes_exactly_one_incident(client, line, team_engineer, order):
    team, engineer = team_engineer
    assert incoming(client).status_code == 200
    for kind in [*order, *reversed(order), order[0]]:  # then Twilio retries every one of them
        response = piece(client, kind)
        assert response.status_code in (200, 204), kind

    record = CallRecord.objects.get(call_sid=SID)
    incident = Incident.objects.get()
    assert record.incident == incident and record.incident_created
    assert record.outcome == CallRecord.Outcome.VOICEMAIL
    assert record.transcript_status == "completed" and record.transcript == TRANSCRIPT
    assert record.recording_duration == 14 and record.recording_sid == "RE" + "a" * 32
    assert incident.team == team and incident.source == "phone"
    assert incident.dedup_key == f"call:{CALLER}"
    assert incident.title == f"Voicemail from {CALLER} on Emergency line"
    assert TRANSCRIPT in incident.details and "pending" not in incident.details
    assert incident.payload["caller"] == CALLER
    assert incident.payload["verification"] == "unverified"
    assert incident.payload["recording"] == {"sid": "RE" + "a" * 32, "duration": 14}
    assert incident.payload["line"]["number"] == line.number
    assert incident.payload["call_time"] == record.started_at.isoformat()
    assert incident.payload["transcript_status"] == "completed"
    assert incident.alert_count == 1
    assert incident.timeline.filter(kind=TimelineEvent.Kind.CREATED).count() == 1
    # At most one "transcript arrived" row, however often it was retried.
    assert incident.timeline.filter(kind=TimelineEvent.Kind.CALL).count() <= 1

    advance.incident_advance(incident_id=incident.pk)
    pages = Page.objects.filter(incident=incident)
    assert [(p.user_id, p.step, p.status) for p in pages] == [(engineer.pk, 0, "pending")]


def test_transcript_pending_then_failed(client, line):
    incoming(client)
    piece(client, "recorded")
    incident = Incident.objects.get()
    assert "Transcript pending" in incident.details
    assert CallRecord.objects.get().transcript_status == "pending"
    piece(client, "transcription", transcript_status="failed")
    incident.refresh_from_db()
    assert CallRecord.objects.get().transcript_status == "failed"
    assert "Transcription failed" in incident.details
    assert incident.payload["transcript_status"] == "failed"


@pytest.mark.parametrize("duration", [0, 1])
def test_short_recording_logs_the_call_without_incident(client, line, duration):
    incoming(client)
    response = piece(client, "recorded", duration=duration)
    assert "too short" in response.content.decode()
    piece(client, "recording_status", duration=duration)
    piece(client, "completed")
    record = CallRecord.objects.get()
    assert record.outcome == CallRecord.Outcome.TOO_SHORT
    assert not Incident.objects.exists()


def test_hang_up_before_the_beep(client, line):
    incoming(client)
    piece(client, "completed")
    record = CallRecord.objects.get()
    assert record.outcome == CallRecord.Outcome.HUNG_UP and record.ended_at is not None
    assert not Incident.objects.exists()


def test_known_caller_is_named_and_verified(client, line):
    contact = CustomerContact.objects.create(organisation="Acme Retail", name="Dana Whitfield")
    CustomerPhone.objects.create(contact=contact, number=CALLER)
    incoming(client, StirVerstat="TN-Validation-Passed-A")
    piece(client, "recorded")
    incident = Incident.objects.get()
    assert incident.title == "Voicemail from Dana Whitfield (Acme Retail) on Emergency line"
    assert incident.payload["verification"] == "verified"
    assert incident.payload["customer"]["organisation"] == "Acme Retail"
    assert CallRecord.objects.get().customer_contact == contact


def test_unknown_caller_is_unverified(client, line):
    incoming(client, caller="+15550177777")
    piece(client, "recorded")
    record = CallRecord.objects.get()
    assert not record.caller_verified and record.customer_contact is None


def test_blocked_number_hears_a_message_and_is_hung_up_on(client, line):
    BlockedNumber.objects.create(number=CALLER, reason="abusive")
    root = twiml(incoming(client))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    piece(client, "recorded")  # even if something came through
    assert CallRecord.objects.get().outcome == CallRecord.Outcome.BLOCKED
    assert not Incident.objects.exists()


def test_rate_limit_per_number(client, line):
    line.max_calls_per_number_per_hour = 2
    line.save()
    for n in range(3):
        root = twiml(incoming(client, call_sid=f"CA{n:032d}"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    outcomes = list(CallRecord.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["in_progress", "in_progress", "rate_limited"]
    # Another number still gets through.
    root = twiml(incoming(client, call_sid="CA" + "9" * 32, caller="+15550177777"))
    assert root.find("Record") is not None


def test_rate_limit_per_line_ignores_refused_calls(client, line):
    line.max_calls_per_line_per_hour = 1
    line.save()
    BlockedNumber.objects.create(number="+15550188888")
    incoming(client, call_sid="CA" + "b" * 32, caller="+15550188888")
    assert twiml(incoming(client, call_sid="CA" + "c" * 32)).find("Record") is not None
    root = twiml(incoming(client, call_sid="CA" + "d" * 32, caller="+15550177777"))
    assert root.find("Record") is None
    assert CallRecord.objects.get(call_sid="CA" + "d" * 32).outcome == "rate_limited"


def test_incoming_retry_keeps_the_first_decision(client, line):
    incoming(client)
    incoming(client)
    record = CallRecord.objects.get()
    assert [e["kind"] for e in record.events] == ["incoming", "incoming_repeat"]


def test_repeat_call_joins_the_open_incident(client, line):
    incoming(client)
    piece(client, "recorded")
    second = "CA" + "2" * 32
    incoming(client, call_sid=second)
    piece(client, "recorded", call_sid=second)
    piece(client, "transcription", call_sid=second, transcript="Still down!")
    incident = Incident.objects.get()
    repeat = CallRecord.objects.get(call_sid=second)
    assert repeat.incident == incident and not repeat.incident_created
    rows = list(incident.timeline.filter(kind=TimelineEvent.Kind.CALL).values_list("message", flat=True))
    assert any("Another call" in m and repeat.reference in m for m in rows)
    assert any("Still down!" in m for m in rows)
    assert "Still down!" not in incident.details  # the details belong to the first call


def test_repeat_call_retriggers_a_stale_acknowledgement(client, line, team_engineer):
    _, engineer = team_engineer
    incoming(client)
    piece(client, "recorded")
    incident = Incident.objects.get()
    services.incident_acknowledge(
        incident=incident, by=engineer, via="web", now=timezone.now() - timedelta(hours=5)
    )  # policy: no ack_timeout -> 30 min
    second = "CA" + "2" * 32
    incoming(client, call_sid=second)
    piece(client, "recorded", call_sid=second)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED
    assert incident.timeline.filter(kind=TimelineEvent.Kind.RETRIGGERED).count() == 1


def test_repeat_call_leaves_a_fresh_acknowledgement_alone(client, line, team_engineer):
    _, engineer = team_engineer
    incoming(client)
    piece(client, "recorded")
    incident = Incident.objects.get()
    services.incident_acknowledge(incident=incident, by=engineer, via="web")
    incoming(client, call_sid="CA" + "2" * 32)
    piece(client, "recorded", call_sid="CA" + "2" * 32)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.timeline.filter(kind=TimelineEvent.Kind.CALL).exists()


def test_resolved_incident_means_a_new_one(client, line):
    incoming(client)
    piece(client, "recorded")
    first = Incident.objects.get()
    services.incident_resolve(incident=first, by=None, via="web")
    incoming(client, call_sid="CA" + "2" * 32)
    piece(client, "recorded", call_sid="CA" + "2" * 32)
    assert Incident.objects.count() == 2


# ------------------------------------------------------------------------------- TwiML


def test_incoming_twiml_records_with_action_beep_and_limits(client, line):
    root = twiml(incoming(client))
    say = root.find("Say")
    assert say.text == line.greeting and say.get("voice") == "Polly.Joanna" and say.get("language") == "en-US"
    record = root.find("Record")
    assert record.get("action") == "https://backstop.example.com/twilio/voice/line/recorded/"
    assert record.get("playBeep") == "true" and record.get("maxLength") == "120"
    assert record.get("timeout") == "5" and record.get("finishOnKey") == "#"
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback").endswith("/twilio/voice/line/transcription/")
    assert record.get("recordingStatusCallback").endswith("/twilio/voice/line/recording-status/")


def test_thank_you_after_recording(client, line):
    incoming(client)
    root = twiml(piece(client, "recorded"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("Say").text == line.thank_you_message


def test_unknown_line_is_not_in_service(client, db):
    root = twiml(incoming(client, to="+15550100000"))
    assert "not in service" in root.find("Say").text
    assert CallRecord.objects.get().outcome == "not_in_service"


def test_outside_business_hours_message(client, line):
    line.business_hours = [{"days": [], "start": "00:00", "end": "00:01"}]  # never open
    line.business_hours_message = "Our office is closed."
    line.save()
    root = twiml(incoming(client))
    assert [s.text for s in root.findall("Say")][1] == "Our office is closed."


def test_menu_routes_to_the_chosen_team(client, line):
    platform, platform_engineer = paged_team("Platform")
    line.menu_enabled = True
    line.save()
    PhoneMenuOption.objects.create(line=line, digit=1, label="payments", team=line.team)
    PhoneMenuOption.objects.create(line=line, digit=2, label="the platform", team=platform)
    root = twiml(incoming(client))
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1" and "press 2" in gather.find("Say").text
    assert root.find("Redirect").text.endswith("/twilio/voice/line/record/")
    menu = twiml(twilio_post(client, "phone_line_menu", call_params(SID, Digits="2")))
    assert menu.find("Record") is not None
    piece(client, "recorded")
    incident = Incident.objects.get()
    assert incident.team == platform
    assert incident.payload["menu"]["digit"] == 2
    assert CallRecord.objects.get().menu_team == platform
    advance.incident_advance(incident_id=incident.pk)
    assert list(Page.objects.values_list("user_id", flat=True)) == [platform_engineer.pk]


def test_menu_invalid_digit_still_takes_a_message_for_the_line_team(client, line):
    line.menu_enabled = True
    line.save()
    PhoneMenuOption.objects.create(line=line, digit=1, label="payments", team=line.team)
    incoming(client)
    root = twiml(twilio_post(client, "phone_line_menu", call_params(SID, Digits="7")))
    assert "not an option" in root.find("Say").text and root.find("Record") is not None
    piece(client, "recorded")
    assert Incident.objects.get().team == line.team


# ---------------------------------------------------------------------- signatures, junk


@pytest.mark.parametrize("case", ["unsigned", "forged", "wrong_host", "other_endpoint", "tampered"])
def test_bad_signatures_are_refused_and_nothing_is_created(client, line, case):
    params = call_params(SID, CallStatus="ringing")
    kwargs = {
        "unsigned": {"signature": ""},
        "forged": {"signature": "bm90IGEgc2lnbmF0dXJl"},
        "wrong_host": {"sign_url": "https://evil.example.com/twilio/voice/line/incoming/"},
        # A genuine signature for another of our URLs, replayed here.
        "other_endpoint": {"sign_url": "https://backstop.example.com/twilio/voice/line/recorded/"},
    }.get(case, {})
    if case == "tampered":
        from tests.escalations.phone_support import sign

        kwargs = {"signature": sign("https://backstop.example.com/twilio/voice/line/incoming/", params)}
        params = {**params, "From": "+15550199999"}
    response = twilio_post(client, "phone_line_incoming", params, **kwargs)
    assert response.status_code == 403
    assert not CallRecord.objects.exists()


def test_forged_callbacks_change_nothing(client, line):
    incoming(client)
    for name in ["phone_line_recorded", "phone_line_recording_status", "phone_line_transcription"]:
        response = twilio_post(client, name, recording_params(SID), signature="Zm9yZ2Vk")
        assert response.status_code == 403
    assert not Incident.objects.exists()
    assert CallRecord.objects.get().recording_sid == ""


def test_get_is_refused(client, line):
    assert client.get("/twilio/voice/line/incoming/").status_code in (403, 405)


def test_malformed_callbacks_never_crash_and_keep_what_arrived(client, line):
    incoming(client)
    # No CallSid at all: valid TwiML, nothing touched.
    root = twiml(twilio_post(client, "phone_line_recorded", {"AccountSid": "AC1"}))
    assert root.find("Hangup") is not None
    # Garbage duration: stored what we could, no incident yet, still valid TwiML.
    params = recording_params(SID, duration="soon")
    twiml(twilio_post(client, "phone_line_recorded", params))
    record = CallRecord.objects.get()
    assert record.recording_sid and record.recording_duration is None
    # Callback for a call we never saw.
    assert piece(client, "transcription", call_sid="CA" + "e" * 32).status_code == 204
    # Transcription with an unknown status changes nothing.
    params = call_params(SID, TranscriptionStatus="weird")
    assert twilio_post(client, "phone_line_transcription", params).status_code == 204
    # Now the real status callback completes the picture.
    piece(client, "recording_status")
    assert Incident.objects.count() == 1


def test_transcription_before_recording_is_kept(client, line):
    incoming(client)
    piece(client, "transcription")
    record = CallRecord.objects.get()
    assert record.transcript == TRANSCRIPT and not Incident.objects.exists()
    piece(client, "recording_status")
    assert TRANSCRIPT in Incident.objects.get().details


def test_voicemail_pages_the_oncall_primary(client, db):
    from rotations.selectors import team_oncall_users
    from tests.factories import (
        ContactMethodFactory,
        EscalationPolicyFactory,
        EscalationStepFactory,
        EscalationTargetFactory,
        NotificationRuleFactory,
        RotationEraFactory,
        RotationFactory,
        TeamFactory,
        UserFactory,
    )

    team = TeamFactory()
    people = [UserFactory() for _ in range(2)]
    for person in people:
        NotificationRuleFactory(contact_method=ContactMethodFactory(user=person))
    RotationEraFactory(rotation=RotationFactory(team=team), participants=people)
    policy = EscalationPolicyFactory(team=team)
    EscalationTargetFactory(step=EscalationStepFactory(policy=policy, order=0), kind="position", position="primary")
    team.escalation_policy = policy
    team.save()
    make_line(team)
    incoming(client)
    piece(client, "recorded")
    incident = Incident.objects.get()
    advance.incident_advance(incident_id=incident.pk)
    primary = team_oncall_users(team=team, position="primary", at=timezone.now())
    assert list(Page.objects.filter(incident=incident).values_list("user_id", flat=True)) == [primary[0].pk]
