"""The emergency line set up in the portal (/calls/lines/, /calls/blocked/, /calls/directory/) and in the
admin, through the same services: bad input gets a 400 with the reason and writes nothing; changes are
audited; the CSV import previews row by row, applies all or nothing and is idempotent."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from escalations.models import BlockedNumber, CustomerContact, CustomerPhone, PhoneLine, PhoneMenuOption
from rotations.models import AuditEntry
from tests.factories import (
    EscalationPolicyFactory,
    MembershipFactory,
    RotationFactory,
    StaffFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, mfa_user):
    staff = mfa_user(StaffFactory(is_superuser=True))
    client.force_login(staff)
    client.user = staff
    return client


@pytest.fixture
def payments():
    team = TeamFactory(name="Payments")
    RotationFactory(team=team)  # positions primary, secondary
    return team


def _line_form(team, **overrides) -> dict:
    data = {
        "number": "+1 555 0100 999",
        "name": "Emergency line",
        "team": team.pk,
        "enabled": "on",
        "greeting": "Hello.",
        "thank_you_message": "Thanks.",
        "language": "en-US",
        "voice": "Polly.Joanna",
        "max_recording_seconds": 120,
        "time_zone": "Europe/Berlin",
        "business_hours_message": "",
        "business_hours_text": "Mon-Fri 08:00-18:00",
        "menu_prompt": "",
        "connect_now_enabled": "on",
        "connect_targets_text": "primary",
        "connect_timeout_seconds": 20,
        "max_calls_per_number_per_hour": 5,
        "max_calls_per_line_per_hour": 60,
    }
    data.update(overrides)
    return data


def _audits(model: str) -> int:
    return AuditEntry.objects.filter(object_type=f"escalations.{model}").count()


# ------------------------------------------------------------------------------------- lines


def test_staff_create_a_line_with_hours_and_targets(staff_client, payments):
    expert = MembershipFactory(team=payments, role="engineer").user
    data = _line_form(payments, connect_targets_text=f"primary\n{expert.email}")
    response = staff_client.post("/calls/lines/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    line = PhoneLine.objects.get()
    assert line.number == "+15550100999"
    assert line.business_hours == [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}]
    assert line.connect_targets == [{"position": "primary"}, {"user": expert.pk}]
    entry = AuditEntry.objects.get(object_type="escalations.phoneline", action="create")
    assert entry.team_id == payments.pk and entry.actor_id == staff_client.user.pk
    page = staff_client.get(f"/calls/lines/{line.pk}/")
    assert page.status_code == 200 and expert.email in page.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field_text"),
    [
        ({"number": "0301234567"}, "international format"),
        ({"number": "+4412"}, "not a possible phone number"),
        ({"business_hours_text": "weekdays 8-6"}, "Mon-Fri 08:00-18:00"),
        ({"business_hours_text": "Mon 18:00-08:00"}, "start must be before the end"),
        ({"connect_targets_text": "tertiary"}, "not a position of Payments"),
        ({"time_zone": "Mars/Olympus"}, "Unknown time zone"),
    ],
)
def test_a_bad_line_is_refused_and_nothing_is_written(staff_client, payments, overrides, field_text):
    response = staff_client.post("/calls/lines/new/", _line_form(payments, **overrides))
    assert response.status_code == 400
    assert field_text in response.content.decode()
    assert not PhoneLine.objects.exists() and _audits("phoneline") == 0


def test_a_connect_target_of_another_team_is_refused(staff_client, payments):
    line = PhoneLine.objects.create(number="+15550100999", name="Emergency line", team=payments)
    stranger = MembershipFactory(team=TeamFactory(name="Platform"), role="engineer").user
    response = staff_client.post(f"/calls/lines/{line.pk}/", _line_form(payments, connect_targets_text=stranger.email))
    assert response.status_code == 400
    assert "is not a member of Payments" in response.content.decode()
    line.refresh_from_db()
    assert line.connect_targets == [{"position": "primary"}, {"position": "secondary"}]
    # A policy of another team is refused too.
    other_policy = EscalationPolicyFactory(team=TeamFactory(name="Ops"))
    response = staff_client.post(f"/calls/lines/{line.pk}/", _line_form(payments, policy=other_policy.pk))
    assert response.status_code == 400 and "belongs to another team" in response.content.decode()
    assert PhoneLine.objects.get(pk=line.pk).policy_id is None and _audits("phoneline") == 0


def test_menu_options_added_edited_removed_and_checked(staff_client, payments):
    line = PhoneLine.objects.create(number="+15550100999", name="Emergency line", team=payments)
    platform = TeamFactory(name="Platform")
    url = f"/calls/lines/{line.pk}/options/new/"
    assert staff_client.post(url, {"digit": 1, "label": "payments", "team": payments.pk}).status_code == 302
    # Digit taken, digit out of range, policy of another team than the option's: refused.
    taken = staff_client.post(url, {"digit": 1, "label": "again", "team": platform.pk})
    assert taken.status_code == 400 and "already an option" in taken.content.decode()
    assert staff_client.post(url, {"digit": 0, "label": "zero", "team": platform.pk}).status_code == 400
    foreign = EscalationPolicyFactory(team=payments)
    wrong = staff_client.post(url, {"digit": 2, "label": "platform", "team": platform.pk, "policy": foreign.pk})
    assert wrong.status_code == 400 and "policy belongs to another team" in wrong.content.decode()
    assert PhoneMenuOption.objects.count() == 1
    option = PhoneMenuOption.objects.get()
    edit = f"/calls/lines/{line.pk}/options/{option.pk}/"
    assert staff_client.post(edit, {"digit": 3, "label": "money", "team": payments.pk}).status_code == 302
    option.refresh_from_db()
    assert (option.digit, option.label) == (3, "money")
    assert staff_client.post(f"{edit}delete/").status_code == 302
    assert not PhoneMenuOption.objects.exists()
    assert list(
        AuditEntry.objects.filter(object_type="escalations.phonemenuoption")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["create", "update", "delete"]


# ---------------------------------------------------------------------------------- block list


def test_block_list_add_refuse_remove(staff_client):
    bad = staff_client.post("/calls/blocked/", {"number": "call me", "reason": ""})
    assert bad.status_code == 400 and not BlockedNumber.objects.exists()
    assert staff_client.post("/calls/blocked/", {"number": "+1 555 014 2999", "reason": "prank"}).status_code == 302
    blocked = BlockedNumber.objects.get()
    assert blocked.number == "+15550142999" and blocked.created_by == staff_client.user
    again = staff_client.post("/calls/blocked/", {"number": "+15550142999", "reason": ""})
    assert again.status_code == 400 and "already blocked" in again.content.decode()
    assert staff_client.post(f"/calls/blocked/{blocked.pk}/delete/").status_code == 302
    assert not BlockedNumber.objects.exists()
    assert _audits("blockednumber") == 2


# ----------------------------------------------------------------------------------- directory


def test_customer_create_refuses_a_bad_or_taken_number(staff_client):
    bad = staff_client.post("/calls/directory/new/", {"organisation": "Acme", "numbers": "+15550142001\nnot a number"})
    assert bad.status_code == 400 and not CustomerContact.objects.exists()
    ok = staff_client.post("/calls/directory/new/", {"organisation": "Acme", "name": "Dana", "numbers": "+15550142001"})
    assert ok.status_code == 302
    taken = staff_client.post("/calls/directory/new/", {"organisation": "Globex", "numbers": "+1 555 014 2001"})
    assert taken.status_code == 400 and "belongs to Dana (Acme)" in taken.content.decode()
    assert CustomerContact.objects.count() == 1
    contact = CustomerContact.objects.get()
    edit = staff_client.post(
        f"/calls/directory/{contact.pk}/",
        {"organisation": "Acme", "name": "Dana", "numbers": "+15550142002; +15550142003", "notes": "VIP"},
    )
    assert edit.status_code == 302
    assert sorted(CustomerPhone.objects.values_list("number", flat=True)) == ["+15550142002", "+15550142003"]
    assert staff_client.post(f"/calls/directory/{contact.pk}/delete/").status_code == 302
    assert not CustomerContact.objects.exists() and not CustomerPhone.objects.exists()
    assert _audits("customercontact") == 3


GOOD_CSV = (
    "name,company,phone numbers,notes\n"
    "Dana Whitfield,Acme Retail,+15550142001; +15550142011,Head of ops\n"
    "Ravi Patel,Globex Logistics,+1 555 014 2002,\n"
)


def _upload(client, text: str, **extra):
    return client.post(
        "/calls/directory/import/", {"file": SimpleUploadedFile("c.csv", text.encode(), "text/csv"), **extra}
    )


def test_import_previews_then_applies_and_reimport_changes_nothing(staff_client):
    CustomerContact.objects.create(organisation="Globex Logistics", name="Ravi Patel")
    preview = _upload(staff_client, GOOD_CSV)
    assert preview.status_code == 200
    plan = preview.context["plan"]
    assert [(r.line, r.action) for r in plan.rows] == [(2, "create"), (3, "update")]
    assert not CustomerPhone.objects.exists()  # a preview writes nothing
    applied = staff_client.post("/calls/directory/import/", {"content": preview.context["content"], "apply": "1"})
    assert applied.status_code == 302
    assert CustomerContact.objects.count() == 2
    assert CustomerPhone.objects.get(number="+15550142002").contact.name == "Ravi Patel"
    audits = AuditEntry.objects.count()
    again = _upload(staff_client, GOOD_CSV)
    assert [r.action for r in again.context["plan"].rows] == ["unchanged", "unchanged"]
    staff_client.post("/calls/directory/import/", {"content": again.context["content"], "apply": "1"})
    assert CustomerContact.objects.count() == 2 and AuditEntry.objects.count() == audits


def test_import_with_a_bad_row_writes_nothing(staff_client):
    bad = GOOD_CSV + "Eve,Initech,0301234567,\n,No company,+15550142005,\nMallory,Umbrella,+15550142001,\n"
    preview = _upload(staff_client, bad)
    rows = {r.line: r for r in preview.context["plan"].rows}
    assert rows[2].action == "create" and rows[3].action == "create"
    assert rows[4].action == "refused" and "international format" in " ".join(rows[4].reasons)
    assert rows[5].action == "create"  # a name is optional, the company is not: the column order is the header's
    assert rows[6].action == "refused" and "also on line 2" in " ".join(rows[6].reasons)
    assert "Import</button>" not in preview.content.decode()
    # Applying anyway (a crafted POST) is refused as a whole.
    applied = staff_client.post("/calls/directory/import/", {"content": bad, "apply": "1"})
    assert applied.status_code == 400 and "Nothing was imported" in applied.content.decode()
    assert not CustomerContact.objects.exists() and not CustomerPhone.objects.exists()
    assert _audits("customercontact") == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"who,what\nx,y\n", "missing: company, phone numbers"),
        (b"", "Choose a CSV file"),
    ],
)
def test_import_refuses_an_unusable_file(staff_client, content, reason):
    data = {"file": SimpleUploadedFile("c.csv", content, "text/csv")} if content else {}
    response = staff_client.post("/calls/directory/import/", data)
    assert response.status_code == 400 and reason in response.content.decode()


def test_non_staff_cannot_open_the_setup_pages(client, payments):
    manager = MembershipFactory(team=payments, role="manager").user
    client.force_login(manager)
    for url in (
        "/calls/lines/",
        "/calls/lines/new/",
        "/calls/blocked/",
        "/calls/directory/",
        "/calls/directory/import/",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post("/calls/blocked/", {"number": "+15550142999"}).status_code == 403
    assert not BlockedNumber.objects.exists()


# --------------------------------------------------------------------------------------- admin


def test_admin_writes_through_the_same_services(staff_client, payments):
    stranger = MembershipFactory(team=TeamFactory(name="Platform"), role="engineer").user
    line = PhoneLine.objects.create(number="+15550100999", name="Emergency line", team=payments)
    response = staff_client.post(
        "/admin/escalations/blockednumber/add/", {"number": "+1 555 014 2999", "reason": "prank"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert BlockedNumber.objects.get().number == "+15550142999" and _audits("blockednumber") == 1
    response = staff_client.post(
        "/admin/escalations/customercontact/add/",
        {"organisation": "Acme", "name": "", "numbers": "0301234", "notes": ""},
    )
    assert response.status_code == 200 and not CustomerContact.objects.exists()
    response = staff_client.post(
        "/admin/escalations/customercontact/add/",
        {"organisation": "Acme", "name": "", "numbers": "+15550142001", "notes": ""},
    )
    assert response.status_code == 302 and _audits("customercontact") == 1
    assert CustomerPhone.objects.get().number == "+15550142001"
    from django.forms.models import model_to_dict

    data = {k: v for k, v in model_to_dict(line).items() if v is not None}
    data.update(
        {
            "business_hours": "[]",
            "connect_targets": f'[{{"user": {stranger.pk}}}]',
            "menu_options-TOTAL_FORMS": 1,
            "menu_options-INITIAL_FORMS": 0,
            "menu_options-MIN_NUM_FORMS": 0,
            "menu_options-MAX_NUM_FORMS": 1000,
            "menu_options-0-digit": 1,
            "menu_options-0-label": "payments",
            "menu_options-0-team": payments.pk,
        }
    )
    for key in ("menu_enabled", "connect_now_enabled", "sms_confirmation", "enabled"):
        data[key] = "on" if data.pop(key, False) else ""
    refused = staff_client.post(f"/admin/escalations/phoneline/{line.pk}/change/", data)
    assert refused.status_code == 200 and "not a member of Payments" in refused.content.decode()
    data["connect_targets"] = '[{"position": "primary"}]'
    saved = staff_client.post(f"/admin/escalations/phoneline/{line.pk}/change/", data)
    assert saved.status_code == 302, (
        saved.context["adminform"].form.errors,
        [f.formset.errors for f in saved.context["inline_admin_formsets"]],
    )
    assert PhoneLine.objects.get(pk=line.pk).connect_targets == [{"position": "primary"}]
    assert _audits("phoneline") == 1 and _audits("phonemenuoption") == 1
