"""The main journeys, in a real browser: sign in, who is on call, work an incident, time off,
an override from the calendar, a voicemail."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from portal.demo import DEMO_PASSWORD, demo_seed
from portal.models import User
from rotations.models import Exclusion, Override, Team
from rotations.selectors import team_oncall_users

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(live_server):
    """The demo roster (three teams, weekly primary/secondary rotations, policies, a phone line)."""
    demo_seed()
    return {team.slug: team for team in Team.objects.all()}


def primary_now(team: Team) -> User:
    [user] = team_oncall_users(team=team, position="primary", at=datetime.now(UTC))
    return user


def test_sign_in_and_see_who_is_on_call(browser_at, demo):
    b = browser_at("phone")
    b.goto("/")
    expect(b.page).to_have_url(re.compile(r"/accounts/login/"))
    b.shot("login")
    b.sign_in("jonas@example.com", "wrong-password")
    expect(b.page.get_by_text(re.compile("not correct|incorrect|invalid", re.I)).first).to_be_visible()
    b.sign_in("jonas@example.com", DEMO_PASSWORD)
    expect(b.page.get_by_role("heading", name="Now", exact=True)).to_be_visible()
    payments = b.page.get_by_role("article", name="Payments")
    expect(payments).to_contain_text(primary_now(demo["payments"]).display_name)
    expect(payments).to_contain_text("primary")
    expect(b.page.get_by_role("article", name="Customer Support")).to_be_visible()
    b.shot("now")
    # The phone layout keeps navigation reachable.
    expect(b.page.get_by_role("navigation", name="Main")).to_be_visible()
    assert not b.console_errors


def test_acknowledge_and_resolve_an_incident(browser_at, demo):
    from escalations.incidents.advance import incident_advance
    from escalations.incidents.services import incident_trigger
    from escalations.models import Incident

    payments = demo["payments"]
    engineer = primary_now(payments)
    incident = incident_trigger(
        team=payments,
        title="Checkout is down",
        source="alert",
        payload={"labels": {"alertname": "CheckoutDown", "severity": "critical"}},
    ).incident
    incident_advance(incident_id=incident.pk)  # step 1 pages the primary now, not on a worker's schedule

    b = browser_at("phone")
    b.sign_in(engineer.email, DEMO_PASSWORD)
    b.page.get_by_role("link", name=re.compile(f"#{incident.pk} Checkout is down")).click()
    expect(b.page.get_by_role("heading", name=f"#{incident.pk} Checkout is down")).to_be_visible()
    expect(b.page.locator("#h-assignees + ul")).to_contain_text(engineer.display_name)
    b.shot("triggered")
    b.page.get_by_role("button", name=re.compile("^Acknowledge")).click()
    expect(b.page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(b.page.locator("#incident-panel .badge").first).to_have_text(re.compile("Acknowledged", re.I))
    expect(b.page.locator(".timeline")).to_contain_text(re.compile("Acknowledged", re.I))
    assert Incident.objects.get(pk=incident.pk).status == Incident.Status.ACKNOWLEDGED
    b.shot("acknowledged")
    b.page.once("dialog", lambda dialog: dialog.accept())  # hx-confirm asks first
    b.page.get_by_role("button", name=re.compile("^Resolve")).click()
    expect(b.page.locator("#incident-panel .badge").first).to_have_text(re.compile("Resolved", re.I))
    expect(b.page.get_by_text("This incident is resolved.")).to_be_visible()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.resolved_by_id == engineer.pk
    b.shot("resolved")
    assert not b.console_errors


def test_request_time_off_and_the_roster_covers_it(browser_at, demo):
    payments = demo["payments"]
    engineer = primary_now(payments)
    b = browser_at("desktop")
    b.sign_in(engineer.email, DEMO_PASSWORD)
    b.page.get_by_role("navigation", name="Main").get_by_role("link", name="My schedule").click()
    # Two teams' rotations are both "Weekly": the schedule names the team.
    expect(b.page.get_by_role("cell", name=f"{payments.name} · Weekly").first).to_be_visible()
    form = b.page.locator("form", has=b.page.get_by_role("button", name="Save time off"))
    start, end = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(days=2)
    form.get_by_label("Why").select_option(index=0)
    form.get_by_label("From").fill(_local(engineer, start))
    form.get_by_label("Until").fill(_local(engineer, end))
    form.get_by_label("Note").fill("Dentist, then a day off")
    b.shot("time-off-form")
    form.get_by_role("button", name="Save time off").click()
    expect(b.page.get_by_text("Time off saved")).to_be_visible()
    assert Exclusion.objects.filter(user=engineer, reason="Dentist, then a day off").exists()

    cover = primary_now(payments)
    assert cover != engineer
    b.page.get_by_role("navigation", name="Main").get_by_role("link", name="Now").click()
    card = b.page.get_by_role("article", name="Payments")
    primary_line = card.locator("li", has=b.page.get_by_text(re.compile("^primary", re.I)))
    expect(primary_line.locator("strong")).to_have_text(cover.display_name)
    expect(primary_line).to_contain_text(f"covering for {engineer.display_name}")
    b.shot("covered")
    assert not b.console_errors


def _local(user: User, at: datetime) -> str:
    """What a datetime-local input expects, in the user's own time zone (the portal's convention)."""
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(user.time_zone or "UTC")).strftime("%Y-%m-%dT%H:%M")


def test_create_an_override_from_the_calendar(browser_at, demo):
    payments = demo["payments"]
    manager = User.objects.get(email="maria@example.com")
    holder = primary_now(payments)
    b = browser_at("desktop")
    b.sign_in(manager.email, DEMO_PASSWORD)
    b.goto(f"/teams/{payments.slug}/")
    b.page.get_by_role("link", name=re.compile("calendar", re.I)).first.click()
    expect(b.page.get_by_role("heading", level=1)).to_contain_text("Payments")
    b.shot("calendar")
    # The primary row's bar for the shift running now: "take it over".
    primary_row = b.page.get_by_role("group", name=re.compile("primary", re.I)).first
    primary_row.get_by_role("link", name=re.compile(re.escape(holder.display_name))).first.click()
    expect(b.page.get_by_role("heading", name=f"Override for {payments.name}")).to_be_visible()
    form = b.page.locator("form.card")
    expect(form.get_by_label("…or take the shifts of")).to_have_value(str(holder.pk))
    taker = User.objects.get(email="tom@example.com")
    form.get_by_label("Who takes the pager").select_option(label=taker.display_name)
    start, end = datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC) + timedelta(hours=3)
    form.get_by_label("From").fill(_local(manager, start))
    form.get_by_label("Until").fill(_local(manager, end))
    form.get_by_label("Reason").fill("Swap for the school run")
    b.shot("override-form")
    form.get_by_role("button", name="Save override").click()
    expect(b.page.get_by_text(f"{taker.display_name} has the pager")).to_be_visible()
    override = Override.objects.get(reason="Swap for the school run")
    assert (override.user, override.replaces_user) == (taker, holder)
    assert primary_now(payments) == taker
    # Back on the calendar, the override is drawn as one.
    expect(b.page.locator(".cal-bar.override").first).to_contain_text(taker.display_name)
    b.shot("calendar-after")
    assert not b.console_errors


def silent_mp3(seconds: float = 1.0) -> bytes:
    """MPEG-1 Layer III, 128 kbit/s, 44.1 kHz mono, every frame silent (zero side info, no main data).

    What Twilio serves for `<RecordingUrl>.mp3`, small enough to build by hand: 417-byte frames of
    1152 samples each.
    """
    header = bytes([0xFF, 0xFB, 0x90, 0xC4])
    frame = header + bytes(417 - len(header))
    return frame * max(1, round(seconds * 44100 / 1152))


class RecordingServer(BaseHTTPRequestHandler):
    """Twilio's recordings endpoint: GET <recording>.mp3 with the account's basic auth."""

    audio = silent_mp3()
    seen: list[tuple[str, str]] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        if not self.path.endswith(".mp3"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(self.audio)))
        self.end_headers()
        self.wfile.write(self.audio)


@pytest.fixture
def recordings(settings):
    RecordingServer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{server.server_port}"
    yield RecordingServer
    server.shutdown()
    server.server_close()


def test_staff_signs_in_with_totp_and_plays_a_voicemail(browser_at, demo, recordings):
    from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

    from escalations.models import PhoneLine
    from escalations.phone.simulator import call_simulate

    line = PhoneLine.objects.get()
    record = call_simulate(
        line=line,
        from_number="+15550142001",
        duration=14,
        transcript="Our checkout is down, customers cannot pay. Please call back.",
    )
    assert record is not None and record.incident_id is not None
    staff = User.objects.get(email="staff@example.com")
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)

    b = browser_at("desktop")
    b.sign_in(staff.email, DEMO_PASSWORD)
    expect(b.page).to_have_url(re.compile(r"/accounts/2fa/authenticate/"))
    b.shot("totp")
    b.page.get_by_label(re.compile("code", re.I)).fill(format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
    b.page.get_by_role("button", name=re.compile("sign in", re.I)).click()
    expect(b.page.get_by_role("heading", name="Now", exact=True)).to_be_visible()

    b.goto("/calls/")
    expect(b.page.get_by_text(record.reference)).to_be_visible()
    b.shot("call-log")
    b.goto(f"/incidents/{record.incident_id}/")
    expect(b.page.get_by_role("heading", name="Emergency call")).to_be_visible()
    expect(b.page.locator(".kv")).to_contain_text("Our checkout is down")
    audio = b.page.locator("audio")
    expect(audio).to_have_attribute("src", f"/calls/{record.pk}/recording")
    # preload="none" keeps the page light; load it as pressing play would, and wait for the outcome.
    state = b.page.evaluate(
        """(a) => new Promise((done) => {
        a.addEventListener("loadedmetadata", () => done({ok: true, duration: a.duration}));
        a.addEventListener("error", () => done({ok: false, code: a.error && a.error.code}));
        a.preload = "auto"; a.load();
    })""",
        audio.element_handle(),
    )
    assert state["ok"], f"audio element failed to load: {state}"
    assert 0.5 < state["duration"] < 2
    assert b.page.evaluate("(a) => a.readyState", audio.element_handle()) >= 1
    path, auth = recordings.seen[-1]
    assert path.endswith(f"/Recordings/{record.recording_sid}.mp3") and auth.startswith("Basic ")
    b.shot("voicemail")
    assert not b.console_errors
