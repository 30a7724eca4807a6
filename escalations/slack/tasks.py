"""Thin Celery wrappers around escalations.slack.services. Each is idempotent: the message sync
renders the incident as it is now, an interaction is claimed once, a user group is set, not added to."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from escalations.slack import publish, services
from escalations.slack.client import SlackRateLimited, SlackTemporaryError


@shared_task(bind=True, name=publish.INCIDENT_MESSAGE_SYNC, acks_late=True, ignore_result=True, max_retries=8)
def incident_message_sync(self, incident_id: int) -> str:
    try:
        result = services.incident_message_sync(incident_id=incident_id, now=timezone.now())
    except SlackRateLimited as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after) from exc
    except SlackTemporaryError as exc:
        raise self.retry(exc=exc, countdown=min(5 * 2**self.request.retries, 300)) from exc
    if result == services.DEFERRED:
        # The holder renders again before letting go; this look after its lease covers a holder that died.
        incident_message_sync.apply_async(args=[incident_id], countdown=services.LEASE.total_seconds() + 1)
    return result


@shared_task(bind=True, name=publish.INTERACTION_HANDLE, acks_late=True, ignore_result=True, max_retries=5)
def interaction_handle(self, request_id: int) -> str:
    try:
        return services.interaction_handle(request_id=request_id, now=timezone.now())
    except SlackTemporaryError as exc:  # finding out who clicked: the click stays unworked until then
        raise self.retry(exc=exc, countdown=2 * 2**self.request.retries) from exc


@shared_task(bind=True, name=publish.ONCALL_USERGROUP_SYNC, acks_late=True, ignore_result=True, max_retries=8)
def oncall_usergroup_sync(self, team_id: int) -> str:
    try:
        return services.oncall_usergroup_sync(team_id=team_id, now=timezone.now())
    except SlackRateLimited as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after) from exc
    except SlackTemporaryError as exc:
        raise self.retry(exc=exc, countdown=min(5 * 2**self.request.retries, 300)) from exc
