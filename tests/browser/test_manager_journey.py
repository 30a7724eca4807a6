"""Issue #19's "Done when": a manager sets up a new team end to end in the portal (members, a rotation
with a follow-the-sun restriction, a policy, an Alertmanager integration, a maintenance window), then
an engineer asks a colleague to swap a shift, the colleague accepts, and the engineer sets reminder
lead times — on the phone-sized and the desktop layouts, through the portal's UI only.

Only the starting point is made with factories: what a staff member leaves behind (a team with its
manager, and the people's accounts, which come from sign-up or SSO, not from a manager).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from escalations.models import EscalationPolicy, Integration, MaintenanceWindow
from portal.models import User
from rotations.models import Membership, NotificationPreference, Override, Rotation, SwapRequest
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"  # UserFactory's
BERLIN = ZoneInfo("Europe/Berlin")


def _local(at: datetime) -> str:
    """A datetime-local value in the users' (and the team's) zone, Europe/Berlin."""
    return at.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")


def _next_monday() -> date:
    today = datetime.now(BERLIN).date()
    return today + timedelta(days=7 - today.weekday())  # strictly after today


def _watch(b, failures: list[str]) -> None:
    """Record every server error the browser meets (page loads and htmx requests alike)."""
    b.page.on("response", lambda r: r.status >= 500 and failures.append(f"{r.status} {r.request.method} {r.url}"))


@pytest.mark.parametrize("layout", ["phone", "desktop"])
def test_manager_sets_up_a_team_and_engineers_swap(browser_at, live_server, layout):
    team = TeamFactory(name="Platform", slug="platform", time_zone="Europe/Berlin")
    manager = UserFactory(full_name="Maya Manager", email="maya@example.com")
    MembershipFactory(team=team, user=manager, role=Membership.Role.MANAGER)
    erin = UserFactory(full_name="Erin Early", email="erin@example.com")
    sam = UserFactory(full_name="Sam Sunset", email="sam@example.com")
    failures: list[str] = []

    # ---------------------------------------------------------------- the manager
    b = browser_at(layout)
    _watch(b, failures)
    b.sign_in(manager.email, PASSWORD)
    b.page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
    b.page.get_by_role("link", name="Platform").first.click()
    expect(b.page.get_by_role("heading", name="Platform", level=1)).to_be_visible()

    # Members: find each person and add them as engineers.
    b.page.get_by_role("link", name="Manage members").click()
    expect(b.page.get_by_role("heading", name="Members of Platform")).to_be_visible()
    for person in (erin, sam):
        b.page.get_by_label("Find a person by name or e-mail").fill(person.full_name.split()[1])
        results = b.page.locator("#member-search-results")
        expect(results).to_contain_text(person.email)
        expect(results.get_by_label(f"Role for {person.display_name}")).to_have_value("engineer")
        results.get_by_role("button", name=f"Add {person.display_name}").click()
        expect(b.page.get_by_text(f"Added {person.display_name} to Platform as engineer.")).to_be_visible()
    expect(b.page.locator("#h-members")).to_contain_text("(3)")
    b.shot("members")
    assert set(Membership.objects.filter(team=team, role="engineer").values_list("user__email", flat=True)) == {
        erin.email,
        sam.email,
    }

    # Rotation with a follow-the-sun window, previewed before it is saved.
    b.page.get_by_role("link", name="← Platform").click()
    b.page.get_by_role("link", name="New rotation").click()
    expect(b.page.get_by_role("heading", name="New rotation for Platform")).to_be_visible()
    monday = _next_monday()
    b.page.get_by_label("Name", exact=True).fill("Berlin days")
    b.page.get_by_label("Time zone").select_option("Europe/Berlin")
    b.page.get_by_label("Positions").fill("primary")
    b.page.get_by_label("First handoff date").fill(monday.isoformat())
    b.page.get_by_label("Handoff time").fill("09:00")
    b.page.get_by_label("Shift unit").select_option("weeks")
    b.page.get_by_label("Shift length").fill("1")
    b.page.get_by_label("On call only during (follow the sun)").fill("Mon-Fri 09:00-17:00")
    b.page.locator(f"#order-{erin.pk}").fill("1")
    b.page.locator(f"#order-{sam.pk}").fill("2")
    b.page.get_by_role("button", name="Preview the next two weeks").click()
    preview = b.page.locator("#rotation-preview")
    expect(preview.get_by_role("heading", name=re.compile(r"^Preview:"))).to_be_visible()
    expect(preview.locator(".cal-bar", has_text="Erin Early").first).to_be_attached()
    # Outside Mon-Fri 09-17 the rotation has nobody: the preview lists those gaps.
    expect(preview.get_by_role("heading", name=re.compile(r"^Gaps: nobody on call"))).to_be_visible()
    assert not Rotation.objects.filter(team=team).exists(), "the preview must not save"
    b.shot("rotation-preview")
    b.page.get_by_role("button", name="Create rotation").click()
    expect(b.page.get_by_text("Created rotation Berlin days.")).to_be_visible()
    rotation = Rotation.objects.get(team=team, name="Berlin days")
    era = rotation.eras.get()
    assert rotation.positions == ["primary"]
    assert list(era.participant_links.order_by("order").values_list("user__email", flat=True)) == [
        erin.email,
        sam.email,
    ]
    assert era.restrictions, "the follow-the-sun window was not saved"
    expect(b.page.get_by_role("region", name="Rotations")).to_contain_text("Berlin days")

    # Escalation policy: page the primary, make it the team default.
    b.page.get_by_role("link", name="New policy").click()
    expect(b.page.get_by_role("heading", name="New escalation policy for Platform")).to_be_visible()
    b.page.get_by_label("Name", exact=True).fill("Platform pager")
    b.page.get_by_label("Team default").check()
    step = b.page.locator("[data-step]").first
    step.get_by_label("Wait (minutes)").fill("10")
    step.get_by_label("On-call positions").fill("primary")
    b.shot("policy-form")
    b.page.get_by_role("button", name="Create policy").click()
    expect(b.page.get_by_text("Created policy Platform pager.")).to_be_visible()
    policy = EscalationPolicy.objects.get(team=team, name="Platform pager")
    team.refresh_from_db()
    assert team.escalation_policy_id == policy.pk
    assert policy.steps.count() == 1
    expect(b.page.get_by_role("region", name="Escalation policies")).to_contain_text("Platform pager")

    # Alertmanager integration: its URL, key and the receiver block to paste.
    b.page.get_by_role("link", name=re.compile("Connect Alertmanager")).click()
    expect(b.page.get_by_role("heading", name="New integration")).to_be_visible()
    b.page.get_by_label("Name", exact=True).fill("Prometheus prod")
    b.page.get_by_label("Kind").select_option(label="Prometheus Alertmanager")
    b.page.get_by_role("button", name="Create integration").click()
    expect(b.page.get_by_text("Created Prometheus prod. Copy its URL and key into the sender.")).to_be_visible()
    integration = Integration.objects.get(team=team, name="Prometheus prod")
    assert integration.kind == Integration.Kind.ALERTMANAGER
    expect(b.page.get_by_role("heading", name="Prometheus prod", level=1)).to_be_visible()
    expect(b.page.locator("#int-url")).to_have_value(re.compile(re.escape(integration.key)))
    expect(b.page.locator("#int-url")).to_have_value(re.compile(r"^http"))
    expect(b.page.locator("#int-key")).to_have_value(integration.key)
    receiver = b.page.locator("pre.code").first
    expect(receiver).to_contain_text("receivers:")
    expect(receiver).to_contain_text("webhook_configs:")
    expect(receiver).to_contain_text(integration.key)
    b.shot("integration")

    # Maintenance window scoped to that integration.
    b.page.get_by_role("link", name="← Integrations of Platform").click()
    b.page.get_by_role("region", name="Maintenance windows").get_by_role("link", name="New window").click()
    expect(b.page.get_by_role("heading", name="New maintenance window")).to_be_visible()
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
    b.page.get_by_label("Start").fill(_local(start))
    b.page.get_by_label("End").fill(_local(start + timedelta(hours=2)))
    b.page.get_by_label("Integration").select_option(label="Prometheus prod")
    b.page.get_by_label("Reason").fill("Prometheus upgrade")
    b.shot("window-form")
    b.page.get_by_role("button", name="Save window").click()
    expect(b.page.get_by_text("Maintenance window saved")).to_be_visible()
    window = MaintenanceWindow.objects.get(team=team)
    assert (window.integration_id, window.reason) == (integration.pk, "Prometheus upgrade")
    assert window.start == start and window.end == start + timedelta(hours=2)
    windows = b.page.get_by_role("region", name="Maintenance windows")
    expect(windows).to_contain_text("Prometheus prod")
    expect(windows).to_contain_text("Prometheus upgrade")
    b.shot("integrations")

    # ---------------------------------------------------------------- Erin asks Sam to take a day
    e = browser_at(layout)
    _watch(e, failures)
    e.sign_in(erin.email, PASSWORD)
    e.page.get_by_role("navigation", name="Main").get_by_role("link", name="My schedule").click()
    swap_section = e.page.get_by_role("region", name="Swap a shift")
    expect(swap_section).to_be_visible()
    tuesday = monday + timedelta(days=1)
    swap_start = datetime.combine(tuesday, time(9, 0), tzinfo=BERLIN)
    swap_end = datetime.combine(tuesday, time(17, 0), tzinfo=BERLIN)
    # Several forms on this page have a "From" and an "Until": pick the swap form's fields within it.
    ask = swap_section.locator("form", has=e.page.get_by_role("button", name="Ask", exact=True))
    ask.locator("select[name=rotation]").select_option(label="Platform · Berlin days")
    ask.locator("select[name=taker]").select_option(label=sam.display_name)
    ask.locator("input[name=start]").fill(_local(swap_start))
    ask.locator("input[name=end]").fill(_local(swap_end))
    ask.locator("input[name=reason]").fill("Dentist on Tuesday")
    e.shot("swap-ask")
    ask.get_by_role("button", name="Ask", exact=True).click()
    expect(e.page.get_by_text("Asked Sam Sunset; your shifts stay yours until they accept.")).to_be_visible()
    swap = SwapRequest.objects.get(requester=erin)
    assert (swap.taker, swap.status, swap.rotation) == (sam, SwapRequest.Status.PENDING, rotation)
    assert not Override.objects.filter(user=sam).exists(), "nothing changes before Sam accepts"
    expect(e.page.get_by_role("list", name="Your requests")).to_contain_text("Waiting for an answer")

    # ---------------------------------------------------------------- Sam accepts in the portal
    s = browser_at(layout)
    _watch(s, failures)
    s.sign_in(sam.email, PASSWORD)
    s.page.get_by_role("navigation", name="Main").get_by_role("link", name="My schedule").click()
    asked = s.page.locator(f"#swap-{swap.pk}")
    expect(asked).to_contain_text("Erin Early asks you to take Platform · Berlin days")
    expect(asked).to_contain_text("Dentist on Tuesday")
    s.shot("swap-incoming")
    asked.get_by_role("button", name="Accept").click()
    expect(s.page.get_by_text("Accepted: you hold those shifts now.")).to_be_visible()
    swap.refresh_from_db()
    assert swap.status == SwapRequest.Status.ACCEPTED
    override = Override.objects.get(user=sam, rotation=rotation)
    assert override.replaces_user_id == erin.pk
    assert (override.start, override.end) == (swap_start, swap_end)
    expect(s.page.locator(f"#swap-{swap.pk}")).to_contain_text("Accepted")
    s.shot("swap-accepted")

    # ---------------------------------------------------------------- Erin's reminder lead times
    e.page.get_by_role("navigation", name="Main").get_by_role("link", name="My schedule").click()
    expect(e.page.locator(f"#swap-{swap.pk}")).to_contain_text("Accepted")
    e.page.locator(".who").get_by_role("link", name=erin.display_name).click()
    notices = e.page.get_by_role("region", name="Shift reminders and notices")
    notices.get_by_label("Remind me before each shift").fill("1h, 10m")
    e.shot("notices")
    notices.get_by_role("button", name="Save shift notices").click()
    expect(e.page.get_by_text("Shift notice settings saved")).to_be_visible()
    assert NotificationPreference.objects.get(user=erin).reminder_lead_minutes == [60, 10]
    expect(e.page.get_by_label("Remind me before each shift")).to_have_value(re.compile(r"1\s*h.*10\s*m"))

    assert not failures, failures
    for who in (b, e, s):
        assert not who.console_errors, who.console_errors
    assert User.objects.filter(is_staff=True).count() == 0  # nobody needed staff powers


def test_my_schedule_form_ids_are_unique_and_help_is_linked(client):
    """Each label on My schedule names its own form's field: the time-off, override and swap forms
    share field names (start, end, reason…), so the override and swap forms render ids of their own.
    And every field's aria-describedby names an element on the page (its help text)."""
    team = TeamFactory()
    me, colleague = UserFactory(), UserFactory()
    MembershipFactory(team=team, user=me)
    MembershipFactory(team=team, user=colleague)
    client.force_login(me)
    html = client.get("/schedule/").content.decode()
    ids = re.findall(r'\sid="([^"]+)"', html)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, duplicates
    described = set(re.findall(r'aria-describedby="([^"]+)"', html))
    assert described and described <= set(ids), sorted(described - set(ids))
