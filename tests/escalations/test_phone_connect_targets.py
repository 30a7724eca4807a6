"""'Connect me now' rings the line's configured targets (positions or people, in order), and every call
that reaches the line is on an incident's timeline: connected, or rung before a voicemail."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.utils import timezone

from escalations.admin.phone import PhoneLineAdminForm
from escalations.models import CallRecord, Incident, PhoneLine, TimelineEvent
from escalations.phone.connect import phone_line_connect_targets_validate
from rotations.models import Membership
from rotations.selectors import team_oncall_users
from tests.escalations.phone_support import CALLER, call_params, make_line, recording_params, twilio_post
from tests.factories import (
    ContactMethodFactory,
    IncidentFactory,
    MembershipFactory,
    RotationEraFactory,
    RotationFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SID = "CA" + "3" * 32


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    return ET.fromstring(response.content)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def voice(user, n: int) -> str:
    return ContactMethodFactory(user=user, kind="voice", value=f"+1555040000{n}").value


@pytest.fixture
def world():
    """A team whose rotation has positions 'lead' and 'backup' (no 'primary'), and a named expert."""
    team = TeamFactory(name="Payments")
    first, second, expert = (MembershipFactory(team=team).user for _ in range(3))
    RotationEraFactory(rotation=RotationFactory(team=team, positions=["lead", "backup"]), participants=[first, second])
    now = timezone.now()
    [lead] = team_oncall_users(team=team, position="lead", at=now)
    [backup] = team_oncall_users(team=team, position="backup", at=now)
    assert {lead, backup} == {first, second}
    numbers = {u.pk: voice(u, n) for n, u in enumerate((lead, backup, expert))}
    return team, lead, backup, expert, numbers


def dial_numbers_until_voicemail(client, call_sid: str = SID) -> list[str]:
    """Press 0 and let every attempt go unanswered; the numbers rung, in order."""
    twilio_post(client, "phone_line_incoming", call_params(call_sid, CallStatus="ringing"))
    root = twiml(twilio_post(client, "phone_line_menu", call_params(call_sid, Digits="0")))
    rung = []
    while (dial := root.find("Dial")) is not None:
        rung.append(dial.find("Number").text)
        root = twiml(
            twilio_post(
                client,
                "phone_line_dial_done",
                call_params(call_sid, DialCallStatus="no-answer"),
                query=query_of(dial.get("action")),
            )
        )
    assert root.find("Record") is not None
    return rung


def test_the_default_targets_are_primary_then_secondary():
    line = make_line(TeamFactory())
    assert line.connect_targets == [{"position": "primary"}, {"position": "secondary"}]


def test_connect_rings_the_configured_person_then_position_in_order(client, world):
    team, lead, backup, expert, numbers = world
    make_line(team, connect_now_enabled=True, connect_targets=[{"user": expert.pk}, {"position": "backup"}])
    # The named expert first, then whoever holds 'backup'; 'lead' is not configured, so not rung.
    assert dial_numbers_until_voicemail(client) == [numbers[expert.pk], numbers[backup.pk]]


def test_a_named_person_who_left_the_team_is_not_rung(client, world):
    team, lead, backup, expert, numbers = world
    make_line(team, connect_now_enabled=True, connect_targets=[{"user": expert.pk}, {"position": "lead"}])
    Membership.objects.filter(team=team, user=expert).delete()
    assert dial_numbers_until_voicemail(client) == [numbers[lead.pk]]


def test_the_voicemail_after_unanswered_attempts_says_who_was_rung(client, world):
    team, lead, backup, expert, _ = world
    make_line(team, connect_now_enabled=True, connect_targets=[{"position": "lead"}, {"user": expert.pk}])
    dial_numbers_until_voicemail(client)
    twilio_post(client, "phone_line_recorded", recording_params(SID, duration=14, CallStatus="in-progress"))
    incident = CallRecord.objects.get().incident
    assert incident is not None
    [entry] = incident.timeline.filter(kind=TimelineEvent.Kind.CALL, message__startswith="Before leaving")
    assert f"Rang: {lead} (no-answer), {expert} (no-answer)." in entry.message


def _connect(client, line: PhoneLine, *, duration: str = "42") -> CallRecord:
    twilio_post(client, "phone_line_incoming", call_params(SID, CallStatus="ringing"))
    root = twiml(twilio_post(client, "phone_line_menu", call_params(SID, Digits="0")))
    dial = root.find("Dial")
    whisper_query = query_of(dial.find("Number").get("url"))
    leg = call_params("CA" + "8" * 32, CallStatus="in-progress")
    whisper = twiml(twilio_post(client, "phone_line_whisper", leg, query=whisper_query))
    gather_query = query_of(whisper.find("Gather").get("action"))
    twiml(twilio_post(client, "phone_line_whisper_accept", {**leg, "Digits": "1"}, query=gather_query))
    twiml(
        twilio_post(
            client,
            "phone_line_dial_done",
            call_params(SID, DialCallStatus="completed", DialCallDuration=duration),
            query=query_of(dial.get("action")),
        )
    )
    return CallRecord.objects.get()


def test_a_connected_call_joins_the_callers_open_incident(client, world):
    team, lead, *_ = world
    line = make_line(team, connect_now_enabled=True, connect_targets=[{"position": "lead"}])
    open_incident = IncidentFactory(team=team, dedup_key=f"call:{CALLER}", title="Earlier voicemail")
    record = _connect(client, line)
    assert record.outcome == "connected" and record.incident == open_incident and not record.incident_created
    assert Incident.objects.count() == 1
    entry = open_incident.timeline.get(kind=TimelineEvent.Kind.CALL)
    assert entry.actor == lead and f"connected to {lead} for 42 s" in entry.message


def test_a_connected_call_opens_an_incident_taken_by_the_engineer(client, world):
    team, lead, *_ = world
    line = make_line(team, connect_now_enabled=True, connect_targets=[{"position": "lead"}])
    record = _connect(client, line, duration="")
    incident = Incident.objects.get()
    assert record.incident == incident and incident.source == Incident.Source.PHONE
    assert incident.status == Incident.Status.ACKNOWLEDGED and incident.acknowledged_by == lead
    entry = incident.timeline.get(kind=TimelineEvent.Kind.CALL)
    assert entry.data["talk_seconds"] is None and f"connected to {lead}." in entry.message


# ------------------------------------------------------------------------------------ validation


def test_valid_targets_are_kept_in_order(world):
    team, _, _, expert, _ = world
    targets = [{"position": "backup"}, {"user": expert.pk}, {"position": "lead"}]
    assert phone_line_connect_targets_validate(team=team, targets=targets) == targets


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([], "Give a list"),
        ({"position": "lead"}, "Give a list"),
        ([{"position": "primary"}], "not a position of Payments"),
        ([{"position": "lead"}, {"position": "lead"}], "listed twice"),
        ([{"phone": "+15550100"}], "unknown kind"),
        ([{"position": "lead", "user": 1}], "use {"),
        ([{"user": "1"}], "not a member"),
        ([{"user": True}], "not a member"),
    ],
)
def test_invalid_targets_are_refused(world, targets, message):
    team, *_ = world
    with pytest.raises(ValidationError, match=message):
        phone_line_connect_targets_validate(team=team, targets=targets)


def test_a_member_of_another_team_is_refused(world):
    team, *_ = world
    outsider = MembershipFactory(team=TeamFactory(name="Platform")).user
    with pytest.raises(ValidationError, match="not a member of Payments"):
        phone_line_connect_targets_validate(team=team, targets=[{"user": outsider.pk}])
    stranger = UserFactory()
    with pytest.raises(ValidationError, match="not a member"):
        phone_line_connect_targets_validate(team=team, targets=[{"user": stranger.pk}])


def test_the_admin_form_validates_targets_through_the_service(world):
    team, _, _, expert, _ = world
    line = make_line(team)
    outsider = MembershipFactory(team=TeamFactory(name="Platform")).user
    data = {k: v for k, v in model_to_dict(line).items() if v is not None}
    data["business_hours"] = "[]"
    form = PhoneLineAdminForm(data={**data, "connect_targets": f'[{{"user": {outsider.pk}}}]'}, instance=line)
    assert not form.is_valid()
    assert "not a member of Payments" in str(form.errors["connect_targets"])
    form = PhoneLineAdminForm(data={**data, "connect_targets": f'[{{"user": {expert.pk}}}]'}, instance=line)
    assert form.is_valid(), form.errors
    form.save()
    line.refresh_from_db()
    assert line.connect_targets == [{"user": expert.pk}]
