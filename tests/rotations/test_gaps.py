"""Coverage-gap alerts to team managers, and the fairness report (scenario: tests/rotations/conftest.py)."""

from datetime import timedelta

from django.core import mail

from rotations.models import Exclusion, GapAlert, Override
from rotations.roster_health import FairnessRow, fairness_report, gaps_check, gaps_check_team
from tests.rotations.conftest import utc

NOW = utc(2026, 10, 24, 12)


def test_everyone_excluded_alerts_managers_once(week):
    # All four away on the 27th (local day): nobody can be primary or secondary.
    for user in (week.A, week.B, week.C, week.D):
        Exclusion.objects.create(user=user, start=utc(2026, 10, 26, 23), end=utc(2026, 10, 27, 23))
    assert gaps_check(now=NOW, days=14) == 2
    assert [m.to for m in mail.outbox] == [["meg@example.com"]]
    assert mail.outbox[0].subject == "[Backstop] On-call gaps in Ops"
    body = mail.outbox[0].body
    assert "- nobody is primary: Tue 27 Oct 00:00 CET – Wed 28 Oct 00:00 CET" in body
    assert "- nobody is secondary: Tue 27 Oct 00:00 CET – Wed 28 Oct 00:00 CET" in body
    # Not repeated by the next run, an hour later, or by the per-change hook.
    assert gaps_check(now=NOW, days=14) == 0
    assert gaps_check(now=NOW + timedelta(hours=1), days=14) == 0
    assert gaps_check_team(team=week.team, now=NOW + timedelta(hours=2), days=14) == []
    assert len(mail.outbox) == 1
    assert GapAlert.objects.count() == 2


def test_new_gap_after_a_roster_change_is_alerted_alone(week):
    assert gaps_check_team(team=week.team, now=NOW, days=14) == []
    Exclusion.objects.create(user=week.A, start=utc(2026, 10, 29, 23), end=utc(2026, 10, 30, 23))
    Exclusion.objects.create(user=week.B, start=utc(2026, 10, 29, 23), end=utc(2026, 10, 30, 23))
    Exclusion.objects.create(user=week.C, start=utc(2026, 10, 29, 23), end=utc(2026, 10, 30, 23))
    new = gaps_check_team(team=week.team, now=NOW, days=14)
    # Only Dan is left on the 30th: he takes primary, secondary is empty.
    assert [(a.position, a.start, a.end) for a in new] == [("secondary", utc(2026, 10, 29, 23), utc(2026, 10, 30, 23))]
    assert len(mail.outbox) == 1


def test_person_on_call_during_own_exclusion(week):
    Exclusion.objects.create(user=week.B, start=utc(2026, 10, 29, 12), end=utc(2026, 10, 29, 14))
    # An override names Ben for primary regardless of his exclusion.
    Override.objects.create(
        rotation=week.rotation, user=week.B, position="primary", start=utc(2026, 10, 29, 10), end=utc(2026, 10, 29, 16)
    )
    new = gaps_check_team(team=week.team, now=NOW, days=14)
    assert [(a.kind, a.user, a.position, a.start, a.end) for a in new] == [
        (GapAlert.Kind.EXCLUDED, week.B, "primary", utc(2026, 10, 29, 12), utc(2026, 10, 29, 14))
    ]
    assert "- Ben is primary during their own exclusion: Thu 29 Oct 13:00 CET – Thu 29 Oct 15:00 CET" in (
        mail.outbox[0].body
    )
    assert gaps_check_team(team=week.team, now=NOW, days=14) == []


def test_fairness_report_hand_checked(week):
    # now = the handoff on the DST day; 3 days back and ahead:
    # past [22nd 08:00, 25th 08:00) UTC, upcoming [25th 08:00, 28th 08:00) UTC.
    rows = fairness_report(team=week.team, now=utc(2026, 10, 25, 8), days=3)
    assert rows == [
        FairnessRow(week.A.pk, "Ann", "primary", 0, 0.0, 1, 24.0),
        # Ben: 22nd 09:00 CEST (clipped to 10:00) to 23rd 21:00 with the override = 35 h.
        FairnessRow(week.B.pk, "Ben", "primary", 1, 35.0, 1, 24.0),
        FairnessRow(week.C.pk, "Cat", "primary", 1, 12.0, 1, 24.0),
        # Dan: 24th 09:00 CEST to 25th 09:00 CET is 25 hours (DST ends in between).
        FairnessRow(week.D.pk, "Dan", "primary", 1, 25.0, 0, 0.0),
        FairnessRow(week.A.pk, "Ann", "secondary", 1, 25.0, 0, 0.0),
        FairnessRow(week.B.pk, "Ben", "secondary", 0, 0.0, 1, 24.0),
        # Cat: 22nd (clipped) 23 h; back from exclusion 27th 00:00-09:00 CET = 9 h.
        FairnessRow(week.C.pk, "Cat", "secondary", 1, 23.0, 1, 9.0),
        # Dan: 23rd 24 h; covers Cat 26th 09:00-24:00 (15 h) and his own 27th (24 h).
        FairnessRow(week.D.pk, "Dan", "secondary", 1, 24.0, 2, 39.0),
    ]


def test_fairness_splits_a_running_shift_at_now(week):
    rows = {(r.name, r.position): r for r in fairness_report(team=week.team, now=utc(2026, 10, 25, 20), days=1)}
    ann = rows[("Ann", "primary")]
    # Ann is primary 25th 08:00 -> 26th 08:00 UTC: 12 h before now, 12 h after; counted in both windows.
    assert (ann.past_shifts, ann.past_hours, ann.upcoming_shifts, ann.upcoming_hours) == (1, 12.0, 1, 12.0)
