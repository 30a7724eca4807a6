"""Thin, idempotent Celery wrappers around the shift-notice services (beat schedule in settings)."""

from celery import shared_task
from django.utils import timezone

from portal.jobs import job_run
from rotations import handover, reminders, roster_health
from rotations.models import Team
from rotations.services import hooks, swaps


@shared_task(name="rotations.tasks.shift_handovers", acks_late=True, ignore_result=True)
def shift_handovers() -> int:
    with job_run("shift-handovers"):
        return handover.handovers_run(now=timezone.now()).sent


@shared_task(name="rotations.tasks.shift_reminders", acks_late=True, ignore_result=True)
def shift_reminders() -> int:
    with job_run("shift-reminders"):
        return reminders.reminders_run(now=timezone.now()).sent


@shared_task(name=hooks.ROSTER_CHANGE_NOTICES, acks_late=True, ignore_result=True)
def roster_change_notices() -> int:
    with job_run("roster-change-notices"):
        return reminders.roster_changes_notify(now=timezone.now())


@shared_task(name="rotations.tasks.roster_gap_check", acks_late=True, ignore_result=True)
def roster_gap_check() -> int:
    with job_run("roster-gap-check"):
        return roster_health.gaps_check(now=timezone.now())


@shared_task(name=hooks.ROSTER_GAP_CHECK_TEAMS, acks_late=True, ignore_result=True)
def roster_gap_check_teams(team_ids: list[int]) -> int:
    """The gap check for the teams a roster edit touched (enqueued after its commit)."""
    now = timezone.now()
    count = 0
    for team in Team.objects.filter(pk__in=team_ids).order_by("pk"):
        count += len(roster_health.gaps_check_team(team=team, now=now))
    return count


@shared_task(name=hooks.SWAP_REQUEST_NOTICE, acks_late=True, ignore_result=True)
def swap_request_notice(swap_id: int, event: str) -> list[str]:
    return swaps.swap_notice_send(swap_id=swap_id, event=event)
