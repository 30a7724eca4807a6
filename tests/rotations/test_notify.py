"""Shift notices by SMS through the paging channels: fake Twilio, or the console outbox without Twilio."""

from datetime import timedelta

from django.core import mail

from escalations.models import OutboxMessage
from rotations.handover import handovers_run
from rotations.models import Exclusion, NotificationPreference
from rotations.notify import SMS_MAX_CHARS, handover_message_send, sms_text
from rotations.reminders import reminders_run, roster_changes_notify
from rotations.roster_health import gaps_check_team
from tests.factories import ContactMethodFactory
from tests.rotations.conftest import utc


def _sms_prefs(user, **kinds):
    NotificationPreference.objects.update_or_create(user=user, defaults=kinds)


def test_handover_goes_by_sms_only_to_verified_numbers_that_did_not_opt_out(week, fake_twilio):
    good = ContactMethodFactory(user=week.A, kind="sms", value="+15550300001")
    ContactMethodFactory(user=week.A, kind="sms", value="+15550300002", verified_at=None)
    ContactMethodFactory(user=week.A, kind="sms", value="+15550300003", opted_out_at=utc(2026, 10, 1))
    ContactMethodFactory(user=week.A, kind="voice", value="+15550300004")
    ContactMethodFactory(user=week.B, kind="sms", value="+15550300005")  # B keeps the e-mail default
    _sms_prefs(week.A, handover_kinds=["email", "sms"])
    handovers_run(now=utc(2026, 10, 21, 7))
    sent = fake_twilio.messages()
    assert [m["to"] for m in sent] == [good.value]
    assert sent[0]["body"].startswith("Backstop: You are now primary for Ops until Thu 22 Oct 09:00 CEST\n")
    assert "Open incidents (0):" in sent[0]["body"]
    # E-mail still goes to both.
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "ben@example.com"]


def test_a_failing_number_does_not_stop_the_email_or_raise(week, fake_twilio):
    ContactMethodFactory(user=week.A, kind="sms", value="+15550300001")
    fake_twilio.plan("400")
    assert handover_message_send(user=week.A, subject="Hi", body="Body", kinds=["sms", "email"]) == ["email"]
    assert fake_twilio.messages() == []
    assert [m.subject for m in mail.outbox] == ["[Backstop] Hi"]


def test_without_twilio_notices_land_in_the_outbox(week, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    for user in (week.A, week.D, week.manager):
        ContactMethodFactory(user=user, kind="sms", value=f"+1555031{user.pk:04d}")
        _sms_prefs(user, handover_kinds=["sms"], reminder_kinds=["sms"], roster_change_kinds=["sms"])
    reminders_run(now=utc(2026, 10, 23, 7))  # 24 h before D's primary / A's secondary on the 24th
    bodies = {m.to: m.body for m in OutboxMessage.objects.filter(kind="notice", channel="sms")}
    assert bodies == {
        f"+1555031{week.D.pk:04d}": bodies[f"+1555031{week.D.pk:04d}"],
        f"+1555031{week.A.pk:04d}": bodies[f"+1555031{week.A.pk:04d}"],
    }
    assert bodies[f"+1555031{week.D.pk:04d}"].startswith(
        "Backstop: Reminder: you are primary for Ops from Sat 24 Oct 09:00 CEST"
    )
    # Cat (no preferences: e-mail) is reminded of the 21:00 primary after Ben's override; Ann and Dan
    # asked for SMS only.
    assert [m.to for m in mail.outbox] == [[week.C.email]]
    OutboxMessage.objects.all().delete()
    # Everyone away on the 27th: the manager's gap alert follows the roster-change channels.
    for user in (week.A, week.B, week.C, week.D):
        Exclusion.objects.create(user=user, start=utc(2026, 10, 26, 23), end=utc(2026, 10, 27, 23))
    gaps_check_team(team=week.team, now=utc(2026, 10, 24, 12), days=14)
    (alert,) = OutboxMessage.objects.filter(kind="notice")
    assert alert.to == f"+1555031{week.manager.pk:04d}"
    assert alert.body.startswith("Backstop: On-call gaps in Ops\nCoverage problems in Ops's on-call schedule:")


def test_roster_change_notice_by_sms(week, fake_twilio):
    number = ContactMethodFactory(user=week.A, kind="sms", value="+15550300001").value
    _sms_prefs(week.A, roster_change_kinds=["sms"])
    now = utc(2026, 10, 22, 12)
    assert roster_changes_notify(now=now) == 0  # baseline
    Exclusion.objects.create(user=week.A, start=utc(2026, 10, 27, 23), end=utc(2026, 10, 28, 23))
    # Ann's shift on the 28th goes to her cover (who hears by e-mail, the default).
    assert roster_changes_notify(now=now + timedelta(minutes=5)) == 2
    assert len(mail.outbox) == 1 and mail.outbox[0].to != [week.A.email]
    (sms,) = fake_twilio.messages(to=number)
    assert sms["body"].startswith("Backstop: Your upcoming shifts changed\nYour upcoming on-call shifts changed.")
    assert "No longer yours:" in sms["body"]


def test_sms_text_is_capped():
    text = sms_text("Subject", "x" * 2000)
    assert len(text) == SMS_MAX_CHARS and text.endswith("…")
    assert sms_text("Short", "Short. Body") == "Backstop: Short\nBody"
