"""After a roster change: the debounced notices and gap check, published by task name."""

from __future__ import annotations

import enum

from celery import current_app
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from rotations.models import (
    Rotation,
)


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


# --------------------------------------------------------------------------- after a change

# Roster-change notices: every write enqueues the (idempotent, concurrency-safe) notice run this long
# after its commit, at most once per window, so a burst of edits (new era, then an override) reaches
# people as one notice instead of several. The 5-minute beat stays the safety net if the broker is down.
# Task names (frozen: workers, queued messages and beat refer to them).
ROSTER_GAP_CHECK_TEAMS = "rotations.tasks.roster_gap_check_teams"
ROSTER_CHANGE_NOTICES = "rotations.tasks.roster_change_notices"

NOTICE_DELAY_SECONDS = 60

SWAP_REQUEST_NOTICE = "rotations.tasks.swap_request_notice"


_NOTICE_QUEUED_KEY = "rotations:roster-change-notices-queued"


def _after_change_enqueue(team_ids: list[int]) -> None:
    # By task name: services never import task modules (see docs/architecture.md).
    current_app.tasks[ROSTER_GAP_CHECK_TEAMS].apply_async(args=[team_ids])
    if cache.add(_NOTICE_QUEUED_KEY, 1, timeout=NOTICE_DELAY_SECONDS):
        current_app.tasks[ROSTER_CHANGE_NOTICES].apply_async(countdown=NOTICE_DELAY_SECONDS)


def roster_changed(*, team_ids) -> None:
    """After the current transaction commits: gap check for `team_ids` and a prompt notice run (Celery).

    robust: a broker outage must not fail the edit; the hourly gap check and the 5-minute notice beat
    catch up.
    """
    ids = sorted({t for t in team_ids if t is not None})
    if ids:
        transaction.on_commit(lambda: _after_change_enqueue(ids), robust=True)


def _user_roster_team_ids(user_id: int) -> set[int]:
    """Teams whose schedule can depend on this person: in one of their rotations, or taking an override."""
    return set(
        Rotation.objects.filter(
            Q(eras__participant_links__user_id=user_id) | Q(overrides__user_id=user_id)
        ).values_list("team_id", flat=True)
    )


def swap_request_noticed(*, swap_id: int, event: str) -> None:
    """After the current transaction commits: tell the other person of a swap request (Celery).

    robust: a broker outage must not undo the request or its answer; the portal shows both anyway.
    """
    transaction.on_commit(
        lambda: current_app.tasks[SWAP_REQUEST_NOTICE].apply_async(args=[swap_id, event]), robust=True
    )
