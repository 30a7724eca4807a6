"""Emergency line in the portal: recording playback, call log, simulator, SMS confirmation, demo."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from escalations.models import CallRecord, Incident, PhoneLine
from escalations.phone import selectors as phone_selectors
from escalations.phone import services as phone
from tests.escalations.phone_support import ACCOUNT, CALLER, call_params, make_line, paged_team, twilio_post
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

AUDIO = b"ID3" + bytes(range(256)) * 300  # ~77 kB: more than one streamed chunk


class FakeTwilio(BaseHTTPRequestHandler):
    """Twilio's REST API, as much of it as we use: recordings (.mp3) and Messages.json."""

    requests: list[tuple[str, str, dict]] = []
    credentials = ""  # the account's real credentials, fixed when the fake starts

    def log_message(self, *args) -> None:
        pass

    def _authorised(self) -> bool:
        expected = base64.b64encode(self.credentials.encode()).decode()
        return self.headers.get("Authorization") == f"Basic {expected}"

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, {}))
        if not self._authorised():
            self.send_response(401)
            self.end_headers()
            return
        if not self.path.endswith(".mp3"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(AUDIO)))
        self.end_headers()
        self.wfile.write(AUDIO)

    def do_POST(self) -> None:
        body = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        self.requests.append(("POST", self.path, body))
        status = 201 if self._authorised() else 401
        payload = {
            "sid": "SM" + "f" * 32,
            "status": "queued",
            "to": body.get("To", [""])[0],
            "from": body.get("From", [""])[0],
            "body": body.get("Body", [""])[0],
        }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_twilio(settings):
    FakeTwilio.requests = []
    FakeTwilio.credentials = f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}"
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    settings.TWILIO_API_BASE_URL = base
    yield base
    server.shutdown()
    server.server_close()


@pytest.fixture
def line():
    return make_line(paged_team()[0])


def voicemail(client, line, base_url: str, call_sid: str = "CA" + "1" * 32) -> CallRecord:
    twilio_post(client, "phone_line_incoming", call_params(call_sid, CallStatus="ringing"))
    sid = "RE" + "a" * 32
    twilio_post(
        client,
        "phone_line_recorded",
        call_params(
            call_sid,
            RecordingSid=sid,
            RecordingDuration="9",
            RecordingUrl=f"{base_url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}",
        ),
    )
    return CallRecord.objects.get(call_sid=call_sid)


# ----------------------------------------------------------------------- recording proxy


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("staff", 200),
        ("manager", 200),
        ("engineer", 200),
        ("viewer", 200),
        ("outsider", 403),
    ],
)
def test_recording_playback_streams_through_the_portal(client, fake_twilio, line, role, status, mfa_user):
    record = voicemail(client, line, fake_twilio)
    users = {"staff": mfa_user(paged_team("Other")[1])}
    users["staff"].is_staff = True
    users["staff"].save()
    users["outsider"] = paged_team("Elsewhere")[1]
    for name in ("manager", "engineer", "viewer"):
        users[name] = MembershipFactory(team=line.team, role=name).user
    client.force_login(users[role])
    response = client.get(f"/calls/{record.pk}/recording")
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "audio/mpeg"
        assert b"".join(response.streaming_content) == AUDIO
        assert fake_twilio not in response.get("Location", "")
        assert FakeTwilio.requests[-1][1].endswith(f"{record.recording_sid}.mp3")
    else:
        assert FakeTwilio.requests == []


def test_recording_playback_requires_login(client, fake_twilio, line):
    record = voicemail(client, line, fake_twilio)
    response = client.get(f"/calls/{record.pk}/recording")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert FakeTwilio.requests == []


def test_recording_from_elsewhere_is_never_fetched_with_our_credentials(client, fake_twilio, line, staff, mfa_user):
    record = voicemail(client, line, "https://attacker.example.com")
    client.force_login(mfa_user(staff))
    assert client.get(f"/calls/{record.pk}/recording").status_code == 404
    assert FakeTwilio.requests == []


def test_recording_upstream_failure_is_a_502(client, fake_twilio, line, staff, mfa_user, settings):
    record = voicemail(client, line, fake_twilio)
    settings.TWILIO_AUTH_TOKEN = "rotated"  # Twilio now refuses our credentials
    client.force_login(mfa_user(staff))
    assert client.get(f"/calls/{record.pk}/recording").status_code == 502


# --------------------------------------------------------------------- call log, simulator


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("staff", 200),
        ("manager", 403),
        ("engineer", 403),
        ("viewer", 403),
        ("outsider", 403),
        ("anonymous", 302),
    ],
)
@pytest.mark.parametrize("url", ["/calls/", "/calls/simulate/"])
def test_staff_pages_permission_matrix(client, role_users, mfa_user, settings, role, status, url):
    settings.BACKSTOP_PHONE_SIMULATOR = True
    if role != "anonymous":
        client.force_login(mfa_user(role_users[role]) if role == "staff" else role_users[role])
    assert client.get(url).status_code == status


def test_simulator_is_off_unless_debug_or_setting(client, staff, mfa_user, settings):
    settings.BACKSTOP_PHONE_SIMULATOR = False
    client.force_login(mfa_user(staff))
    assert client.get("/calls/simulate/").status_code == 404
    assert b"Simulate a call" not in client.get("/calls/").content


def test_simulated_call_becomes_an_incident(client, line, staff, mfa_user, settings):
    settings.BACKSTOP_PHONE_SIMULATOR = True
    line.sms_confirmation = True
    line.save()
    client.force_login(mfa_user(staff))
    response = client.post(
        "/calls/simulate/",
        {
            "line": line.pk,
            "from_number": CALLER,
            "digit": "",
            "transcript": "Payments are failing",
            "duration": 14,
        },
    )
    assert response.status_code == 302
    record = CallRecord.objects.get()
    assert record.simulated and record.outcome == "voicemail" and record.transcript == "Payments are failing"
    assert record.call_status == "completed" and record.sms_status == ""  # simulated callers get no SMS
    incident = Incident.objects.get()
    assert incident.source == "phone" and "Payments are failing" in incident.details
    page = client.get("/calls/")
    assert record.reference.encode() in page.content and b"Voicemail" in page.content


def test_simulator_requests_are_really_signed(client, line, staff, mfa_user, settings):
    """If the webhooks checked nothing this would pass too; a wrong token must make it fail."""
    settings.BACKSTOP_PHONE_SIMULATOR = True
    from escalations.phone.simulator import call_simulate

    original = settings.TWILIO_AUTH_TOKEN
    from unittest import mock

    with mock.patch("escalations.phone.simulator.RequestValidator") as validator_cls:
        from twilio.request_validator import RequestValidator

        validator_cls.return_value = RequestValidator(original + "-wrong")
        assert call_simulate(line=line, from_number=CALLER, transcript="x", duration=9) is None
    assert not CallRecord.objects.exists()


# --------------------------------------------------------------------- SMS confirmation


def test_sms_confirmation_is_sent_after_commit_once(
    client, fake_twilio, line, django_capture_on_commit_callbacks, monkeypatch
):
    line.sms_confirmation = True
    line.save()
    sent = []
    monkeypatch.setattr(
        "escalations.phone.tasks.phone_sms_confirmation_send.delay", lambda call_id: sent.append(call_id)
    )
    with django_capture_on_commit_callbacks(execute=True):
        record = voicemail(client, line, fake_twilio)
        twilio_post(
            client,
            "phone_line_recording_status",
            call_params(
                record.call_sid,
                RecordingSid=record.recording_sid,
                RecordingUrl=record.recording_url,
                RecordingDuration="9",
                RecordingStatus="completed",
            ),
        )
    assert sent == [record.pk]
    assert phone.call_sms_confirmation_send(call_id=record.pk) == "sent"
    assert phone.call_sms_confirmation_send(call_id=record.pk) == "sent"  # a redelivered task sends nothing
    posts = [r for r in FakeTwilio.requests if r[0] == "POST"]
    assert len(posts) == 1
    assert posts[0][1] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert posts[0][2]["To"] == [CALLER] and posts[0][2]["From"] == [line.number]
    assert record.reference in posts[0][2]["Body"][0]
    record.refresh_from_db()
    assert record.sms_status == "sent" and record.sms_sid == "SM" + "f" * 32


def test_sms_confirmation_failure_is_recorded(client, fake_twilio, line, settings):
    line.sms_confirmation = True
    line.save()
    record = voicemail(client, line, fake_twilio)
    settings.TWILIO_AUTH_TOKEN = "rotated"
    assert phone.call_sms_confirmation_send(call_id=record.pk) == "failed"


# --------------------------------------------------------------------------------- demo


def test_demo_seed_creates_the_emergency_line_idempotently():
    from portal.demo import demo_seed

    demo_seed()
    demo_seed()
    line = PhoneLine.objects.get(number="+15550100999")
    assert line.team.name == "Payments" and line.menu_enabled
    assert [(o.digit, o.team.name) for o in line.menu_options.all()] == [(1, "Payments"), (2, "Platform")]
    assert phone_selectors.caller_identify(number="+15550142001").organisation == "Acme Retail"
    assert phone_selectors.caller_identify(number="+1 555-014-2002").organisation == "Globex Logistics"


def test_sms_confirmation_without_twilio_lands_in_the_outbox(client, fake_twilio, line, settings):
    from escalations.models import OutboxMessage

    line.sms_confirmation = True
    line.save()
    record = voicemail(client, line, fake_twilio)
    settings.TWILIO_ACCOUNT_SID = ""  # the demo: no Twilio account, the console channel is the outbox
    assert phone.call_sms_confirmation_send(call_id=record.pk) == "sent"
    (sms,) = OutboxMessage.objects.all()
    assert (sms.channel, sms.to, sms.kind, sms.incident_id) == ("sms", CALLER, "notice", record.incident_id)
    assert record.reference in sms.body
    record.refresh_from_db()
    assert record.sms_status == "sent" and record.sms_sid == f"OUTBOX{sms.pk}"
    assert not [r for r in FakeTwilio.requests if r[0] == "POST"]


def test_call_log_links_to_the_incident_and_the_incident_shows_the_call(client, fake_twilio, line, staff, mfa_user):
    from django.urls import reverse

    record = voicemail(client, line, fake_twilio)
    twilio_post(
        client,
        "phone_line_transcription",
        call_params(
            record.call_sid,
            RecordingSid=record.recording_sid,
            RecordingUrl=record.recording_url,
            TranscriptionStatus="completed",
            TranscriptionText="The checkout returns 500 for every card",
        ),
    )
    record.refresh_from_db()
    assert record.incident is not None
    client.force_login(mfa_user(staff))
    detail = reverse("portal:incident", args=[record.incident_id])
    log = client.get("/calls/").content.decode()
    assert f'<a href="{detail}">#{record.incident_id}</a>' in log
    # The incident page, as an engineer of the line's team: caller, transcript, a playable recording.
    engineer = MembershipFactory(team=line.team, role="engineer").user
    client.force_login(engineer)
    body = client.get(detail).content.decode()
    assert "Emergency call" in body and CALLER in body and record.reference in body
    assert "The checkout returns 500 for every card" in body
    src = reverse("calls:recording", args=[record.pk])
    # hx-preserve: the player keeps playing when the panel is swapped after an action.
    assert f'<audio id="call-audio-{record.pk}" hx-preserve controls preload="none" src="{src}">' in body
    response = client.get(src)
    assert response.status_code == 200 and b"".join(response.streaming_content) == AUDIO
