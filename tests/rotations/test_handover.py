"""Handovers over a week of a primary/secondary rotation across the DST change."""

from datetime import timedelta

import pytest
from django.core import mail

from rotations.handover import handover_log_get, handover_note_add, handovers_run
from rotations.models import Handover, Override
from tests.rotations.conftest import utc

# Every handoff of the scenario in tests/rotations/conftest.py, in UTC.
HANDOFF_TIMES = [
    utc(2026, 10, 21, 7),
    utc(2026, 10, 22, 7),
    utc(2026, 10, 23, 7),
    utc(2026, 10, 23, 19),
    utc(2026, 10, 24, 7),
    utc(2026, 10, 25, 8),
    utc(2026, 10, 26, 8),
    utc(2026, 10, 26, 23),
    utc(2026, 10, 27, 8),
    utc(2026, 10, 28, 8),
]
MINUTE = timedelta(minutes=1)


def run_at(times, names):
    """Run the job at each time; return (run time, recipient letter, subject) per message sent."""
    sent = []
    for now in times:
        before = len(mail.outbox)
        handovers_run(now=now)
        sent += [(now, names[m.to[0]], m.subject.removeprefix("[Backstop] ")) for m in mail.outbox[before:]]
    return sent


def around(times):
    return [t + d for t in times for d in (-MINUTE, timedelta(0), MINUTE)]


EXPECTED_WEEK = [
    (utc(2026, 10, 21, 7), "A", "You are now primary for Ops until Thu 22 Oct 09:00 CEST"),
    (utc(2026, 10, 21, 7), "B", "You are now secondary for Ops until Thu 22 Oct 09:00 CEST"),
    # B moves secondary -> primary: stays on call, gets only the incoming message.
    (utc(2026, 10, 22, 7), "A", "Your primary shift for Ops ended"),
    (utc(2026, 10, 22, 7), "B", "You are now primary for Ops until Fri 23 Oct 21:00 CEST"),
    (utc(2026, 10, 22, 7), "C", "You are now secondary for Ops until Fri 23 Oct 09:00 CEST"),
    # 23rd 09:00: the primary handoff is cancelled by B's override; secondary goes C -> D.
    (utc(2026, 10, 23, 7), "C", "Your secondary shift for Ops ended"),
    (utc(2026, 10, 23, 7), "D", "You are now secondary for Ops until Sat 24 Oct 09:00 CEST"),
    (utc(2026, 10, 23, 19), "B", "Your primary shift for Ops ended"),
    (utc(2026, 10, 23, 19), "C", "You are now primary for Ops until Sat 24 Oct 09:00 CEST"),
    (utc(2026, 10, 24, 7), "A", "You are now secondary for Ops until Sun 25 Oct 09:00 CET"),
    (utc(2026, 10, 24, 7), "C", "Your primary shift for Ops ended"),
    (utc(2026, 10, 24, 7), "D", "You are now primary for Ops until Sun 25 Oct 09:00 CET"),
    # After the DST change 09:00 local is 08:00 UTC.
    (utc(2026, 10, 25, 8), "A", "You are now primary for Ops until Mon 26 Oct 09:00 CET"),
    (utc(2026, 10, 25, 8), "B", "You are now secondary for Ops until Mon 26 Oct 09:00 CET"),
    (utc(2026, 10, 25, 8), "D", "Your primary shift for Ops ended"),
    # C is excluded on the 26th: D covers secondary until C is back at midnight.
    (utc(2026, 10, 26, 8), "A", "Your primary shift for Ops ended"),
    (utc(2026, 10, 26, 8), "B", "You are now primary for Ops until Tue 27 Oct 09:00 CET"),
    (utc(2026, 10, 26, 8), "D", "You are now secondary for Ops until Tue 27 Oct 00:00 CET"),
    (utc(2026, 10, 26, 23), "C", "You are now secondary for Ops until Tue 27 Oct 09:00 CET"),
    (utc(2026, 10, 26, 23), "D", "Your secondary shift for Ops ended"),
    (utc(2026, 10, 27, 8), "B", "Your primary shift for Ops ended"),
    (utc(2026, 10, 27, 8), "C", "You are now primary for Ops until Wed 28 Oct 09:00 CET"),
    (utc(2026, 10, 27, 8), "D", "You are now secondary for Ops until Wed 28 Oct 09:00 CET"),
    (utc(2026, 10, 28, 8), "A", "You are now secondary for Ops until Thu 29 Oct 09:00 CET"),
    (utc(2026, 10, 28, 8), "C", "Your primary shift for Ops ended"),
    (utc(2026, 10, 28, 8), "D", "You are now primary for Ops until Thu 29 Oct 09:00 CET"),
]


def test_week_across_dst_sends_each_handover_once_at_its_time(week, names):
    sent = run_at(around(HANDOFF_TIMES), names)
    assert sorted(sent) == sorted(EXPECTED_WEEK)
    rows = Handover.objects.filter(rotation=week.rotation)
    assert rows.filter(canceled_by_override=False).count() == 17
    assert not rows.filter(sent_at__isnull=True, canceled_by_override=False).exists()
    assert not rows.filter(late=True).exists()
    canceled = rows.get(canceled_by_override=True)
    assert (canceled.position, canceled.at, canceled.outgoing_user, canceled.incoming_user) == (
        "primary",
        utc(2026, 10, 23, 7),
        week.B,
        week.C,
    )
    assert canceled.sent_at is None
    # Re-running any of those minutes sends nothing more.
    assert run_at(around(HANDOFF_TIMES), names) == []


def test_beat_down_for_three_handoffs_sends_each_once_late(week, names):
    run_at([utc(2026, 10, 23, 18, 59)], names)  # cursor just before the 19:00 handoff
    mail.outbox.clear()
    # Down from 23rd 18:59 to 24th 07:30: three handoffs (23rd 19:00 primary, 24th 07:00 primary+secondary).
    late_run = utc(2026, 10, 24, 7, 30)
    sent = run_at([late_run], names)
    assert sorted(sent) == sorted(
        [
            (late_run, "A", "You are now secondary for Ops until Sun 25 Oct 09:00 CET (late)"),
            (late_run, "B", "Your primary shift for Ops ended"),
            (late_run, "C", "Your primary shift for Ops ended"),
            (late_run, "C", "You are now primary for Ops until Sat 24 Oct 09:00 CEST (late)"),
            (late_run, "D", "You are now primary for Ops until Sun 25 Oct 09:00 CET (late)"),
        ]
    )
    rows = Handover.objects.filter(due_at__gt=utc(2026, 10, 23, 18, 59))
    assert rows.count() == 3
    assert all(r.late and r.sent_at == late_run for r in rows)
    incoming_c = next(m for m in mail.outbox if m.to == [week.C.email] and "You are now" in m.subject)
    assert "Sent late: this handover was due at Fri 23 Oct 21:00 CEST" in incoming_c.body
    assert run_at([late_run + MINUTE, late_run + 2 * MINUTE], names) == []


def test_override_created_ahead_cancels_a_handoff(week, names):
    # Dan takes primary for the whole of the 25th: D keeps it at 25th 09:00, no primary handoff then.
    Override.objects.create(
        rotation=week.rotation, user=week.D, position="primary", start=utc(2026, 10, 25, 8), end=utc(2026, 10, 26, 8)
    )
    run_at([utc(2026, 10, 25, 7, 59)], names)
    mail.outbox.clear()
    sent = run_at([utc(2026, 10, 25, 8), utc(2026, 10, 25, 8, 1)], names)
    # Only the secondary handoff A -> B happens; A leaves the rota (no primary for A).
    assert sorted(sent) == sorted(
        [
            (utc(2026, 10, 25, 8), "A", "Your secondary shift for Ops ended"),
            (utc(2026, 10, 25, 8), "B", "You are now secondary for Ops until Mon 26 Oct 09:00 CET"),
        ]
    )
    canceled = Handover.objects.get(position="primary", at=utc(2026, 10, 25, 8))
    assert canceled.canceled_by_override and canceled.sent_at is None


def test_incoming_message_has_incidents_note_and_other_positions(week, names):
    from tests.factories import IncidentFactory

    run_at([utc(2026, 10, 22, 6, 59)], names)
    mail.outbox.clear()
    inc = IncidentFactory(team=week.team, title="Disk full on db1", created_at=utc(2026, 10, 22, 4, 0))
    handover_note_add(
        team=week.team,
        author=week.A,
        text="db1 disk: cleanup cron is flaky",
        position="primary",
        now=utc(2026, 10, 22, 6),
    )
    handover_note_add(team=week.team, author=week.A, text="old note", now=utc(2026, 10, 20, 6))
    handovers_run(now=utc(2026, 10, 22, 7))
    body = next(m.body for m in mail.outbox if m.to == [week.B.email])
    assert f"#{inc.pk} Disk full on db1 [triggered, open 3h 0m]" in body
    assert "Handover note from Ann:\n  db1 disk: cleanup cron is flaky" in body
    assert "old note" not in body
    assert "Also on call:\n- secondary: Cat" in body
    assert "Taking over from Ann." in body


def test_team_handover_mailbox(week, names):
    week.team.handover_email = "ops-handover@example.com"
    week.team.save()
    run_at([utc(2026, 10, 22, 6, 59), utc(2026, 10, 22, 7)], names | {"ops-handover@example.com": "T"})
    team_mails = [m for m in mail.outbox if m.to == ["ops-handover@example.com"]]
    assert sorted(m.subject for m in team_mails) == [
        "[Backstop] Handover Ops primary: Ann → Ben",
        "[Backstop] Handover Ops secondary: Ben → Cat",
    ]


def test_handover_log(week, names):
    run_at([utc(2026, 10, 22, 6, 59), utc(2026, 10, 22, 7), utc(2026, 10, 23, 7)], names)
    log = handover_log_get(team=week.team, limit=10)
    assert [(h.at, h.position, h.canceled_by_override) for h in log] == [
        (utc(2026, 10, 23, 7), "primary", True),
        (utc(2026, 10, 23, 7), "secondary", False),
        (utc(2026, 10, 22, 7), "primary", False),
        (utc(2026, 10, 22, 7), "secondary", False),
    ]


@pytest.mark.parametrize("lookback_hours", [6])
def test_first_run_only_looks_back(week, names, lookback_hours):
    # Without a cursor the first run covers now - lookback only: the 21st's start is not re-sent on the 22nd.
    sent = run_at([utc(2026, 10, 22, 7)], names)
    assert {s[0] for s in sent} == {utc(2026, 10, 22, 7)}


def test_handover_hands_open_incidents_per_policy(week, names):
    from escalations.models import Incident, TimelineEvent
    from tests.factories import EscalationPolicyFactory, IncidentFactory

    follow = EscalationPolicyFactory(team=week.team, reassign_on_handover=True)
    stay = EscalationPolicyFactory(team=week.team, reassign_on_handover=False)
    moved = IncidentFactory(team=week.team, policy=follow, created_at=utc(2026, 10, 22, 5))
    kept = IncidentFactory(team=week.team, policy=stay, created_at=utc(2026, 10, 22, 5))
    shared = IncidentFactory(team=week.team, policy=follow, created_at=utc(2026, 10, 22, 5))
    resolved = IncidentFactory(
        team=week.team, policy=follow, created_at=utc(2026, 10, 22, 5), status=Incident.Status.RESOLVED
    )
    bens = IncidentFactory(team=week.team, policy=follow, created_at=utc(2026, 10, 22, 5))
    for inc in (moved, kept, resolved):
        inc.assignees.set([week.A])
    shared.assignees.set([week.A, week.manager])
    bens.assignees.set([week.B])  # Ben moves secondary -> primary: stays on call, keeps his incident

    run_at([utc(2026, 10, 22, 6, 59), utc(2026, 10, 22, 7), utc(2026, 10, 22, 7, 1)], names)

    assert set(moved.assignees.all()) == {week.B}
    assert set(kept.assignees.all()) == {week.A}
    assert set(shared.assignees.all()) == {week.manager, week.B}
    assert set(resolved.assignees.all()) == {week.A}
    assert set(bens.assignees.all()) == {week.B}
    kinds = lambda inc: list(inc.timeline.values_list("kind", flat=True))  # noqa: E731
    # Ben has no verified contact method in this fixture: the reassignment says he cannot be paged.
    assert kinds(moved) == [
        TimelineEvent.Kind.HANDOVER,
        TimelineEvent.Kind.REASSIGNED,
        TimelineEvent.Kind.PAGE_FAILED,
    ]
    assert kinds(kept) == [TimelineEvent.Kind.HANDOVER]
    assert "assignees unchanged" in kept.timeline.get().message
    assert kinds(resolved) == [] and kinds(bens) == []
    row = Handover.objects.get(position="primary", at=utc(2026, 10, 22, 7))
    assert sorted(row.incidents_handed) == sorted([moved.pk, kept.pk, shared.pk])
    ann = next(m for m in mail.outbox if m.to == [week.A.email])
    assert "3 incidents handed to Ben." in ann.body
