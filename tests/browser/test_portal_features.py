"""Browser journeys for the live incident page, the escalation policy's step editor and team members."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from escalations.models import EscalationPolicy
from portal.demo import DEMO_PASSWORD
from portal.models import User
from rotations.models import Membership
from tests.browser.test_journeys import demo, primary_now  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


def test_incident_page_updates_live_and_keeps_the_note_being_typed(browser_at, demo):  # noqa: F811
    from escalations.incidents.advance import incident_advance
    from escalations.incidents.services import incident_acknowledge, incident_note_add, incident_trigger

    payments = demo["payments"]
    engineer = primary_now(payments)
    maria = User.objects.get(email="maria@example.com")
    incident = incident_trigger(team=payments, title="Disk almost full", source="alert").incident
    incident_advance(incident_id=incident.pk)

    b = browser_at("desktop")
    b.sign_in(engineer.email, DEMO_PASSWORD)
    b.goto(f"/incidents/{incident.pk}/")
    expect(b.page.locator("#act-acknowledge")).to_be_visible()
    note = b.page.get_by_label(re.compile("Add a note"))
    note.fill("Half-written thought about the disk")
    # Meanwhile the manager acknowledges by SMS and writes a note from the API.
    incident_acknowledge(incident=incident, by=maria, via="sms")
    incident_note_add(incident=incident, by=maria, text="On it from my phone", via="api")
    timeline = b.page.locator("#incident-timeline")
    expect(timeline).to_contain_text("On it from my phone", timeout=15_000)
    expect(b.page.locator("#incident-head .badge").first).to_have_text(re.compile("Acknowledged", re.I))
    expect(b.page.locator("#incident-engine")).to_contain_text(f"Acknowledged by {maria.display_name}")
    expect(b.page.locator("#act-acknowledge")).to_have_count(0)  # the action buttons follow the state
    expect(note).to_have_value("Half-written thought about the disk")
    assert b.page.evaluate("document.activeElement && document.activeElement.id") == "note-text"
    b.shot("live-acknowledged")
    # Keyboard shortcuts still work on the refreshed buttons (focus out of the textarea first).
    b.page.locator("h1").click()
    b.page.once("dialog", lambda dialog: dialog.accept())
    b.page.keyboard.press("r")
    expect(b.page.locator("#incident-head .badge").first).to_have_text(re.compile("Resolved", re.I))
    assert not b.console_errors


def test_add_remove_and_reorder_policy_steps(browser_at, demo):  # noqa: F811
    payments = demo["payments"]
    policy = EscalationPolicy.objects.get(team=payments, name="Default")
    b = browser_at("desktop")
    b.sign_in("maria@example.com", DEMO_PASSWORD)
    b.goto(f"/teams/{payments.slug}/")
    b.page.locator("article", has=b.page.get_by_role("heading", name=re.compile("Default"))).get_by_role(
        "link", name="Edit"
    ).click()
    expect(b.page.get_by_role("heading", level=1)).to_have_text("Edit Default")
    steps = b.page.locator("[data-step-list] > fieldset:visible")
    expect(steps).to_have_count(3)  # primary, secondary, managers; the no-JS spare step is put away
    expect(b.page.locator("[data-step-order]:visible, [data-step-delete]:visible")).to_have_count(0)  # JS does those

    steps.nth(1).get_by_role("button", name=re.compile("^Remove step")).click()  # drop "secondary"
    expect(steps).to_have_count(2)
    expect(b.page.locator("#steps-status")).to_have_text("Step 2 removed.")
    b.page.get_by_role("button", name="Add step").click()
    expect(steps).to_have_count(3)
    name = b.page.evaluate("document.activeElement.name")  # focus lands in the new step
    assert re.fullmatch(r"steps-\d+-delay_minutes", name)
    new = b.page.locator("fieldset", has=b.page.locator(f'input[name="{name}"]'))
    expect(new.locator("legend")).to_have_text("Step 3")
    new.get_by_label("Wait (minutes)").fill("2")
    new.get_by_label("Whole team").check()
    new.get_by_role("button", name=re.compile("^Move up")).click()
    new.get_by_role("button", name=re.compile("^Move up")).click()
    expect(new.locator("legend")).to_have_text("Step 1")
    expect(new.get_by_role("button", name=re.compile("^Move up"))).to_be_disabled()
    b.shot("policy-steps-edited")
    b.page.get_by_role("button", name="Save policy").click()
    expect(b.page.get_by_text("Saved Default.")).to_be_visible()
    article = b.page.locator("article", has=b.page.get_by_role("heading", name=re.compile("Default")))
    expect(article.locator("li").first).to_contain_text(re.compile("team", re.I))
    b.shot("policy-saved")
    saved = [
        (s.delay.total_seconds() / 60, [t.kind for t in s.targets.all()])
        for s in policy.steps.order_by("order").prefetch_related("targets")
    ]
    assert saved == [(2, ["team"]), (5, ["position"]), (10, ["managers"])]
    assert list(policy.steps.get(order=1).targets.values_list("position", flat=True)) == ["primary"]

    # A step added and left empty comes back with the reason next to it.
    b.page.locator("article", has=b.page.get_by_role("heading", name=re.compile("Default"))).get_by_role(
        "link", name="Edit"
    ).click()
    b.page.get_by_role("button", name="Add step").click()
    b.page.locator("[data-step-list] > fieldset:visible").last.get_by_label("Wait (minutes)").fill("7")
    b.page.get_by_role("button", name="Save policy").click()
    last = b.page.locator("[data-step-list] > fieldset:visible").last
    expect(last).to_contain_text("Choose who this step notifies")
    expect(last.locator("legend")).to_have_text("Step 4")
    b.shot("policy-step-error")
    assert policy.steps.count() == 3
    # The refused save answers 400 on purpose (the page says why); chromium logs that, nothing else.
    assert [e for e in b.console_errors if "status of 400" not in e] == []


def test_manager_adds_a_member_and_is_told_why_a_rotation_member_stays(browser_at, demo):  # noqa: F811
    payments = demo["payments"]
    b = browser_at("phone")
    b.sign_in("maria@example.com", DEMO_PASSWORD)
    b.goto(f"/teams/{payments.slug}/")
    b.page.get_by_role("link", name="Manage members").click()
    expect(b.page.get_by_role("heading", level=1)).to_have_text(f"Members of {payments.name}")
    b.page.get_by_label("Find a person by name or e-mail").fill("carl")
    results = b.page.locator("#member-search-results")
    expect(results).to_contain_text("Carlos Ruiz")  # found as you type (htmx), no reload
    results.get_by_label("Role for Carlos Ruiz").select_option("viewer")
    b.shot("member-search")
    results.get_by_role("button", name="Add Carlos Ruiz").click()
    expect(b.page.get_by_text("Added Carlos Ruiz to Payments as viewer.")).to_be_visible()
    carlos = User.objects.get(email="carlos@example.com")
    assert Membership.objects.get(team=payments, user=carlos).role == "viewer"
    jonas = User.objects.get(email="jonas@example.com")
    b.page.once("dialog", lambda dialog: dialog.accept())
    b.page.get_by_role("button", name=f"Remove {jonas.display_name}").click()
    expect(b.page.get_by_role("status")).to_contain_text("rotation Weekly")
    b.shot("member-refused")
    assert Membership.objects.filter(team=payments, user=jonas).exists()
    assert [e for e in b.console_errors if "status of 400" not in e] == []  # the refusal is a 400 on purpose
