"""Roster writes trigger the gap check and a prompt roster-change notice run, after commit, via Celery."""

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache

from config.celery import app
from rotations import tasks
from rotations.models import GapAlert, RosterChangeNotice
from rotations.reminders import roster_changes_notify
from rotations.services import exclusions, hooks, memberships, overrides
from rotations.services import rotations as services_rotations
from tests.rotations.conftest import utc

NOW = utc(2026, 10, 24, 12)


@pytest.fixture
def eager():
    """Run enqueued tasks in-process (the real task code, no broker), and count what was enqueued."""
    cache.delete(hooks._NOTICE_QUEUED_KEY)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = False, False
    cache.delete(hooks._NOTICE_QUEUED_KEY)


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    for task in (tasks.roster_gap_check_teams, tasks.roster_change_notices):
        real = task.apply_async

        def spy(*args, _real=real, _name=task.name, **kwargs):
            calls.append((_name, kwargs.get("args"), kwargs.get("countdown")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(task, "apply_async", spy)
    return calls


def _all_away(week, actor):
    for user in (week.A, week.B, week.C, week.D):
        exclusions.exclusion_create(user=user, start=utc(2026, 10, 26, 23), end=utc(2026, 10, 27, 23), actor=actor)


def test_nothing_runs_inside_the_request_transaction(week, django_capture_on_commit_callbacks, enqueued):
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=False) as callbacks:
        _all_away(week, week.manager)
    assert len(callbacks) == 4 and enqueued == []
    assert not GapAlert.objects.exists() and mail.outbox == []


def test_exclusions_alert_the_manager_after_commit(week, django_capture_on_commit_callbacks, eager, enqueued):
    with time_machine.travel(NOW, tick=False):
        roster_changes_notify(now=NOW)  # baseline for everyone
        with django_capture_on_commit_callbacks(execute=True):
            _all_away(week, week.manager)
    gap_runs = [c for c in enqueued if c[0] == "rotations.tasks.roster_gap_check_teams"]
    assert gap_runs == [("rotations.tasks.roster_gap_check_teams", [[week.team.pk]], None)] * 4
    # One notice run for the burst of four edits, a minute later.
    assert [c for c in enqueued if c[0] == "rotations.tasks.roster_change_notices"] == [
        ("rotations.tasks.roster_change_notices", None, hooks.NOTICE_DELAY_SECONDS)
    ]
    assert set(GapAlert.objects.values_list("position", flat=True)) == {"primary", "secondary"}
    gap_mail = [m for m in mail.outbox if m.subject == "[Backstop] On-call gaps in Ops"]
    assert [m.to for m in gap_mail] == [[week.manager.email]]
    # Somebody's shift on the 27th went away: they were told by the notice run.
    assert RosterChangeNotice.objects.filter(sent_at__isnull=False).exists()
    assert any(m.subject == "[Backstop] Your upcoming shifts changed" for m in mail.outbox)


@pytest.mark.parametrize("change", ["override", "definition", "membership", "exclusion_on_someone_elsewhere"])
def test_each_kind_of_roster_write_enqueues_the_gap_check(
    week, change, django_capture_on_commit_callbacks, eager, enqueued
):
    from tests.factories import TeamFactory, UserFactory

    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        if change == "override":
            overrides.override_create(
                rotation=week.rotation,
                user=week.manager,
                position="primary",
                start=utc(2026, 10, 30, 8),
                end=utc(2026, 10, 30, 12),
                actor=week.manager,
            )
        elif change == "definition":
            services_rotations.rotation_definition_change(
                rotation=week.rotation,
                effective_from=utc(2026, 11, 1),
                participants=[week.A, week.B],
                actor=week.manager,
                now=NOW,
            )
        elif change == "membership":
            memberships.membership_create(team=week.team, user=UserFactory(), role="manager", actor=week.manager)
        else:
            elsewhere = UserFactory()
            exclusions.exclusion_create(user=elsewhere, start=NOW, end=utc(2026, 10, 25), actor=elsewhere)
            TeamFactory()
    teams = [c[1] for c in enqueued if c[0] == "rotations.tasks.roster_gap_check_teams"]
    assert teams == ([] if change == "exclusion_on_someone_elsewhere" else [[[week.team.pk]]])
