"""An engineer's working day on the phone-sized layout: hand over with a note, page a team by hand,
set shift reminders, and change then cancel time off — all in the portal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from escalations.models import Incident
from portal.demo import DEMO_PASSWORD, demo_seed
from portal.models import User
from rotations.models import Exclusion, HandoverNote, NotificationPreference, Team
from rotations.selectors import team_oncall_users

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def _local(user: User, at: datetime) -> str:
    return at.astimezone(ZoneInfo(user.time_zone or "UTC")).strftime("%Y-%m-%dT%H:%M")


def test_engineer_day_on_the_phone(browser_at, live_server):
    demo_seed()
    payments = Team.objects.get(slug="payments")
    [engineer] = team_oncall_users(team=payments, position="primary", at=datetime.now(UTC))
    b = browser_at("phone")
    b.sign_in(engineer.email, DEMO_PASSWORD)

    # On call now: the Payments card offers a handover note for the held position.
    card = b.page.get_by_role("article", name="Payments")
    card.get_by_role("link", name="Write a handover note").first.click()
    expect(b.page.get_by_role("heading", name=f"Handover note for {payments.name}")).to_be_visible()
    b.page.get_by_role("textbox", name="Note").fill("db1 replication lag, watch it after 02:00")
    b.shot("handover-note")
    b.page.get_by_role("button", name="Save note").click()
    expect(b.page.get_by_text("Handover note saved")).to_be_visible()
    note = HandoverNote.objects.get(author=engineer)
    assert (note.team, note.position) == (payments, "primary")

    # Page a team by hand from Now.
    b.page.get_by_role("navigation", name="Main").get_by_role("link", name="Now").click()
    b.page.get_by_role("link", name="Page a team").click()
    b.page.get_by_label("Team to page").select_option(label=payments.name)
    b.page.get_by_label("What is wrong").fill("Card payments declined for EU customers")
    b.page.get_by_label("Details").fill("Support has 12 tickets since 09:10")
    b.shot("page-a-team")
    b.page.get_by_role("button", name="Open incident and page").click()
    incident = Incident.objects.get(title="Card payments declined for EU customers")
    assert (incident.team, incident.source) == (payments, Incident.Source.MANUAL)
    expect(
        b.page.get_by_role("heading", name=f"#{incident.pk} Card payments declined for EU customers")
    ).to_be_visible()

    # Reminder lead times on the profile.
    b.goto("/profile/")
    notices = b.page.locator("form", has=b.page.get_by_role("button", name="Save shift notices"))
    notices.get_by_label("Remind me before each shift").fill("2h, 10m")
    b.shot("shift-notices")
    notices.get_by_role("button", name="Save shift notices").click()
    expect(b.page.get_by_text("Shift notice settings saved")).to_be_visible()
    assert NotificationPreference.objects.get(user=engineer).reminder_lead_minutes == [120, 10]

    # Time off: save, change, cancel.
    b.page.get_by_role("navigation", name="Main").get_by_role("link", name="My schedule").click()
    start = datetime.now(UTC) + timedelta(days=10)
    form = b.page.locator("form", has=b.page.get_by_role("button", name="Save time off"))
    form.get_by_label("From").fill(_local(engineer, start))
    form.get_by_label("Until").fill(_local(engineer, start + timedelta(days=2)))
    form.get_by_role("button", name="Save time off").click()
    expect(b.page.get_by_text("Time off saved")).to_be_visible()
    exclusion = Exclusion.objects.get(user=engineer, start__gte=start - timedelta(minutes=1))
    b.page.locator(f"#exclusion-{exclusion.pk}").get_by_role("link", name="Change").click()
    b.page.get_by_label("Until").fill(_local(engineer, start + timedelta(days=4)))
    b.shot("change-time-off")
    b.page.get_by_role("button", name="Save changes").click()
    expect(b.page.get_by_text("Time off changed")).to_be_visible()
    exclusion.refresh_from_db()
    assert exclusion.end - exclusion.start > timedelta(days=3, hours=23)
    b.page.once("dialog", lambda dialog: dialog.accept())
    b.page.locator(f"#exclusion-{exclusion.pk}").get_by_role("button", name="Cancel").click()
    expect(b.page.get_by_text("Time off cancelled")).to_be_visible()
    assert not Exclusion.objects.filter(pk=exclusion.pk).exists()
    b.shot("schedule")
    assert not b.console_errors
