"""Work published after the commit, by task name (services never import task modules; see
docs/architecture.md). Every function here is a no-op while Slack is not configured.

`incident_changed` is the one call the incident rooms make: from `incidents.timeline.timeline_record`
and the engine's batch, whenever an event Slack shows is recorded. It costs a set lookup when the
event is not one of those, and nothing else runs before the commit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from celery import current_app
from django.db import transaction

from escalations.slack.client import slack_configured

logger = logging.getLogger(__name__)

# Task names are frozen: workers and queued messages refer to them.
INCIDENT_MESSAGE_SYNC = "escalations.slack.incident_message_sync"
INTERACTION_HANDLE = "escalations.slack.interaction_handle"
ONCALL_USERGROUP_SYNC = "escalations.slack.oncall_usergroup_sync"

# Timeline kinds that change what the channel message shows (TimelineEvent.Kind values).
SHOWN_KINDS = frozenset(
    {
        "created",
        "acknowledged",
        "escalated",
        "step_reached",
        "exhausted",
        "reassigned",
        "snoozed",
        "resolved",
        "retriggered",
        "urgency_raised",
        "policy_changed",
    }
)


def _publish(name: str, args: list) -> None:
    try:
        current_app.tasks[name].apply_async(args=args)
    except Exception:  # a broker outage must not fail the committed change; Slack lags, nothing else
        logger.exception("could not publish %s%s", name, args)


def incident_message_refresh(*, incident_id: int) -> None:
    """After the current transaction commits: bring the incident's Slack message up to date."""
    if slack_configured():
        transaction.on_commit(functools.partial(_publish, INCIDENT_MESSAGE_SYNC, [incident_id]), robust=True)


def incident_changed(*, incident_id: int, kind: str) -> None:
    """An event of this kind was recorded on the incident: refresh its message if Slack shows the change."""
    if kind in SHOWN_KINDS:
        incident_message_refresh(incident_id=incident_id)


def incidents_changed(*, events: Iterable[tuple[int, str]]) -> None:
    """`incident_changed` for many (incident id, kind) pairs, one refresh per incident."""
    for incident_id in sorted({iid for iid, kind in events if kind in SHOWN_KINDS}):
        incident_message_refresh(incident_id=incident_id)


def oncall_usergroups_sync(*, team_ids: Iterable[int]) -> None:
    """After the current transaction commits: set each team's on-call user group to who is on call."""
    if not slack_configured():
        return
    for team_id in sorted(set(team_ids)):
        transaction.on_commit(functools.partial(_publish, ONCALL_USERGROUP_SYNC, [team_id]), robust=True)


def interaction_enqueue(*, request_id: int) -> bool:
    """Hand a stored Slack interaction to a worker; False when the broker could not take it."""
    try:
        current_app.tasks[INTERACTION_HANDLE].apply_async(args=[request_id])
    except Exception:
        logger.exception("could not publish the Slack interaction %s", request_id)
        return False
    return True
