"""'Connect me now' with the default targets: primary then secondary, each must press 1; else a voicemail."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from escalations.models import CallRecord, Incident, TimelineEvent
from tests.escalations.phone_support import call_params, make_line, paged_team, twilio_post
from tests.factories import ContactMethodFactory, RotationEraFactory, RotationFactory

pytestmark = pytest.mark.django_db

SID = "CA" + "1" * 32


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    return ET.fromstring(response.content)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def line():
    team, _ = paged_team()
    return make_line(team, connect_now_enabled=True, connect_timeout_seconds=15)


def test_press_0_with_nobody_on_call_falls_back_to_voicemail(client, line):
    root = twiml(twilio_post(client, "phone_line_incoming", call_params(SID, CallStatus="ringing")))
    assert "press 0" in root.find("Gather/Say").text
    root = twiml(twilio_post(client, "phone_line_menu", call_params(SID, Digits="0")))
    assert "Nobody could take your call" in root.find("Say").text
    assert root.find("Record") is not None and root.find("Dial") is None


@pytest.fixture
def oncall(line):
    from rotations.selectors import team_oncall_users

    people = [paged_team(f"Home {n}")[1] for n in range(2)]
    for n, person in enumerate(people):
        ContactMethodFactory(user=person, kind="voice", value=f"+1555030000{n}")
    RotationEraFactory(rotation=RotationFactory(team=line.team), participants=people)
    now = timezone.now()
    primary = team_oncall_users(team=line.team, position="primary", at=now)
    secondary = team_oncall_users(team=line.team, position="secondary", at=now)
    assert primary and secondary and primary != secondary
    return primary[0], secondary[0]


def dial_of(root: ET.Element) -> tuple[ET.Element, ET.Element]:
    dial = root.find("Dial")
    assert dial is not None, ET.tostring(root)
    return dial, dial.find("Number")


def test_nobody_accepts_rings_primary_then_secondary_then_voicemail(client, line, oncall):
    primary, secondary = oncall
    twilio_post(client, "phone_line_incoming", call_params(SID, CallStatus="ringing"))
    dial, number = dial_of(twiml(twilio_post(client, "phone_line_menu", call_params(SID, Digits="0"))))
    assert dial.get("timeout") == "15" and dial.get("callerId") == line.number
    assert number.text == primary.contact_methods.get(kind="voice").value
    whisper_query = query_of(number.get("url"))
    assert whisper_query == {"call": SID, "user": str(primary.pk)}

    # The engineer's voicemail picks up: the whisper asks for 1, nobody presses it.
    leg = call_params("CA" + "7" * 32, CallStatus="in-progress")
    root = twiml(twilio_post(client, "phone_line_whisper", leg, query=whisper_query))
    assert "Press 1" in root.find("Gather/Say").text and root.find("Hangup") is not None
    root = twiml(
        twilio_post(
            client,
            "phone_line_dial_done",
            call_params(SID, DialCallStatus="completed"),
            query=query_of(dial.get("action")),
        )
    )
    dial, number = dial_of(root)
    assert number.text == secondary.contact_methods.get(kind="voice").value
    root = twiml(
        twilio_post(
            client,
            "phone_line_dial_done",
            call_params(SID, DialCallStatus="no-answer"),
            query=query_of(dial.get("action")),
        )
    )
    assert root.find("Record") is not None
    assert CallRecord.objects.get().outcome == "in_progress"


def test_engineer_presses_1_and_the_call_is_connected(client, line, oncall):
    primary, _ = oncall
    twilio_post(client, "phone_line_incoming", call_params(SID, CallStatus="ringing"))
    dial, number = dial_of(twiml(twilio_post(client, "phone_line_menu", call_params(SID, Digits="0"))))
    leg = call_params("CA" + "7" * 32, CallStatus="in-progress")
    whisper = twiml(twilio_post(client, "phone_line_whisper", leg, query=query_of(number.get("url"))))
    accept = twiml(
        twilio_post(
            client,
            "phone_line_whisper_accept",
            {**leg, "Digits": "1"},
            query=query_of(whisper.find("Gather").get("action")),
        )
    )
    assert accept.find("Hangup") is None  # TwiML ends: Twilio bridges the two legs
    root = twiml(
        twilio_post(
            client,
            "phone_line_dial_done",
            call_params(SID, DialCallStatus="completed", DialCallDuration="95"),
            query=query_of(dial.get("action")),
        )
    )
    assert [child.tag for child in root] == ["Hangup"]
    record = CallRecord.objects.get()
    assert record.outcome == "connected" and record.connected_to == primary
    # Every call that reached someone is on record: an incident, taken by the engineer on the phone.
    incident = Incident.objects.get()
    assert record.incident == incident and record.incident_created
    assert incident.status == Incident.Status.ACKNOWLEDGED and incident.acknowledged_by == primary
    entry = incident.timeline.get(kind=TimelineEvent.Kind.CALL)
    assert entry.actor == primary and entry.data["talk_seconds"] == 95
    assert f"connected to {primary} for 95 s" in entry.message and f"{primary} (completed, 95 s)" in entry.message


def test_whisper_other_key_hangs_up_the_engineer_leg(client, line, oncall):
    primary, _ = oncall
    twilio_post(client, "phone_line_incoming", call_params(SID, CallStatus="ringing"))
    leg = {**call_params("CA" + "7" * 32), "Digits": "5"}
    root = twiml(twilio_post(client, "phone_line_whisper_accept", leg, query={"call": SID, "user": primary.pk}))
    assert root.find("Hangup") is not None
    assert CallRecord.objects.get().connected_to is None
