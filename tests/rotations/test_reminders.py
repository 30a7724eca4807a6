"""Before-shift reminders and roster-change notices over the DST week (tests/rotations/conftest.py)."""

from datetime import timedelta

from django.core import mail

from rotations.models import NotificationPreference, Override, RosterChangeNotice, ShiftReminder
from rotations.reminders import reminders_run, roster_changes_notify
from tests.rotations.conftest import utc

MINUTE = timedelta(minutes=1)
# Shift starts from the 24th 09:00 CEST to the 26th 24:00 CET (C back from the exclusion).
STARTS = [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8), utc(2026, 10, 26, 23)]


def run_at(times, names):
    sent = []
    for now in sorted(set(times)):
        before = len(mail.outbox)
        reminders_run(now=now)
        sent += [(now, names[m.to[0]], m.subject.removeprefix("[Backstop] ")) for m in mail.outbox[before:]]
    return sent


def lead_times(starts, leads=(1440, 15)):
    return [s - timedelta(minutes=lead) + d for s in starts for lead in leads for d in (-MINUTE, timedelta(0), MINUTE)]


def test_reminders_at_each_lead_across_dst(week, names):
    reminders_run(now=utc(2026, 10, 23, 6, 59))  # first look: catches up what is already due
    mail.outbox.clear()
    # Plus the 24 h lead of the 27th's shifts, so the last runs have nothing overdue to catch up.
    times = lead_times(STARTS) + lead_times([utc(2026, 10, 27, 8)], leads=(1440,))
    sent = run_at(times, names)
    p, s = "Reminder: you are primary for Ops from", "Reminder: you are secondary for Ops from"
    assert sorted(sent) == sorted(
        [
            (utc(2026, 10, 23, 7), "D", f"{p} Sat 24 Oct 09:00 CEST"),
            (utc(2026, 10, 23, 7), "A", f"{s} Sat 24 Oct 09:00 CEST"),
            (utc(2026, 10, 24, 6, 45), "D", f"{p} Sat 24 Oct 09:00 CEST"),
            (utc(2026, 10, 24, 6, 45), "A", f"{s} Sat 24 Oct 09:00 CEST"),
            # 24 hours before a 09:00 CET shift is 10:00 CEST the day before.
            (utc(2026, 10, 24, 8), "A", f"{p} Sun 25 Oct 09:00 CET"),
            (utc(2026, 10, 24, 8), "B", f"{s} Sun 25 Oct 09:00 CET"),
            (utc(2026, 10, 25, 7, 45), "A", f"{p} Sun 25 Oct 09:00 CET"),
            (utc(2026, 10, 25, 7, 45), "B", f"{s} Sun 25 Oct 09:00 CET"),
            (utc(2026, 10, 25, 8), "B", f"{p} Mon 26 Oct 09:00 CET"),
            (utc(2026, 10, 25, 8), "D", f"{s} Mon 26 Oct 09:00 CET"),  # covering for Cat
            (utc(2026, 10, 25, 23), "C", f"{s} Tue 27 Oct 00:00 CET"),
            (utc(2026, 10, 26, 7, 45), "B", f"{p} Mon 26 Oct 09:00 CET"),
            (utc(2026, 10, 26, 7, 45), "D", f"{s} Mon 26 Oct 09:00 CET"),
            (utc(2026, 10, 26, 8), "C", f"{p} Tue 27 Oct 09:00 CET"),
            (utc(2026, 10, 26, 8), "D", f"{s} Tue 27 Oct 09:00 CET"),
            (utc(2026, 10, 26, 22, 45), "C", f"{s} Tue 27 Oct 00:00 CET"),
        ]
    )
    assert run_at(times, names) == []


def test_reminders_missed_while_beat_down_go_out_once_if_shift_not_started(week, names):
    reminders_run(now=utc(2026, 10, 24, 7, 30))
    mail.outbox.clear()
    # Down until 07:50 on the 25th: Ann's and Ben's 24 h and 15 min reminders were both missed.
    sent = run_at([utc(2026, 10, 25, 7, 50)], names)
    assert sorted(sent) == [
        (utc(2026, 10, 25, 7, 50), "A", "Reminder: you are primary for Ops from Sun 25 Oct 09:00 CET"),
        (utc(2026, 10, 25, 7, 50), "B", "Reminder: you are secondary for Ops from Sun 25 Oct 09:00 CET"),
    ]
    assert "(This reminder is late.)" in mail.outbox[0].body
    rows = ShiftReminder.objects.filter(shift_start=utc(2026, 10, 25, 8), user=week.A)
    assert sorted(rows.values_list("lead_minutes", "delivered", "late")) == [(15, True, True), (1440, False, True)]
    assert run_at([utc(2026, 10, 25, 7, 51), utc(2026, 10, 25, 7, 52)], names) == []


def test_no_late_reminder_once_the_shift_started(week, names):
    reminders_run(now=utc(2026, 10, 24, 7, 30))
    mail.outbox.clear()
    sent = run_at([utc(2026, 10, 25, 8, 5)], names)
    assert all(s[2].endswith("Mon 26 Oct 09:00 CET") for s in sent)  # only the 26th's 24 h reminders
    assert not ShiftReminder.objects.filter(shift_start=utc(2026, 10, 25, 8)).exists()


def test_personal_lead_times(week, names):
    NotificationPreference.objects.create(user=week.A, reminder_lead_minutes=[60])
    reminders_run(now=utc(2026, 10, 24, 8))  # Ben's 24 h reminder
    mail.outbox.clear()
    sent = run_at([utc(2026, 10, 25, 6, 59), utc(2026, 10, 25, 7), utc(2026, 10, 25, 7, 45)], names)
    assert [(t, who) for t, who, _ in sent] == [(utc(2026, 10, 25, 7), "A"), (utc(2026, 10, 25, 7, 45), "B")]


def test_roster_change_notice_lists_added_and_removed_shifts(week, names):
    now = utc(2026, 10, 22, 12)
    assert roster_changes_notify(now=now) == 0  # silent baseline
    assert RosterChangeNotice.objects.count() == 4
    assert roster_changes_notify(now=now + timedelta(minutes=5)) == 0  # nothing changed
    # Cat takes Dan's primary shift on the 24th.
    Override.objects.create(
        rotation=week.rotation, user=week.C, replaces_user=week.D, start=utc(2026, 10, 24, 7), end=utc(2026, 10, 25, 8)
    )
    assert roster_changes_notify(now=now + timedelta(minutes=10)) == 2
    by = {names[m.to[0]]: m.body for m in mail.outbox}
    assert sorted(by) == ["C", "D"]
    # Cat's primary shift from the 23rd 21:00 now runs on through the 24th: one longer shift.
    assert "New:\n- primary, Ops: Fri 23 Oct 21:00 CEST – Sun 25 Oct 09:00 CET" in by["C"]
    assert "No longer yours:\n- primary, Ops: Fri 23 Oct 21:00 CEST – Sat 24 Oct 09:00 CEST" in by["C"]
    assert "New:" not in by["D"]
    assert "No longer yours:\n- primary, Ops: Sat 24 Oct 09:00 CEST – Sun 25 Oct 09:00 CET" in by["D"]
    mail.outbox.clear()
    assert roster_changes_notify(now=now + timedelta(minutes=15)) == 0
    # A day later shifts have started and new ones entered the horizon: not a change.
    assert roster_changes_notify(now=now + timedelta(days=1)) == 0
    assert mail.outbox == []


def test_lead_times_saved_in_the_portal_drive_the_reminders(week, names):
    from django.test import Client

    client = Client()
    client.force_login(week.A)
    saved = client.post(
        "/profile/notices",
        {
            "reminder_leads": "1h",
            "reminder_kinds": ["email"],
            "handover_kinds": ["email"],
            "roster_change_kinds": ["email"],
        },
    )
    assert saved.status_code == 302
    reminders_run(now=utc(2026, 10, 24, 8))
    mail.outbox.clear()
    sent = run_at([utc(2026, 10, 25, 6, 59), utc(2026, 10, 25, 7), utc(2026, 10, 25, 7, 45)], names)
    assert [(t, who) for t, who, _ in sent] == [(utc(2026, 10, 25, 7), "A"), (utc(2026, 10, 25, 7, 45), "B")]
