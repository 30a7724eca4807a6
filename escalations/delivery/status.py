"""Provider status callbacks mapped onto page status, in one allowed direction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from escalations.delivery.record import _channel_label, _promote_next_rule, _timeline, _who
from escalations.models import Page, TimelineEvent

logger = logging.getLogger(__name__)

NOT_REACHED = {Page.Status.FAILED, Page.Status.NO_ANSWER, Page.Status.BUSY}


TERMINAL = {
    Page.Status.DELIVERED,
    Page.Status.ANSWERED,
    Page.Status.FAILED,
    Page.Status.NO_ANSWER,
    Page.Status.BUSY,
    Page.Status.CANCELED,
}


@dataclass
class StatusUpdate:
    changed: bool
    status: str
    promoted_page_ids: list[int] = field(default_factory=list)


# --- provider status callbacks -------------------------------------------------------------------

_SMS_STATUS = {
    "accepted": Page.Status.SENT,
    "scheduled": Page.Status.SENT,
    "queued": Page.Status.SENT,
    "sending": Page.Status.SENT,
    "sent": Page.Status.SENT,
    "delivered": Page.Status.DELIVERED,
    "read": Page.Status.DELIVERED,
    "undelivered": Page.Status.FAILED,
    "failed": Page.Status.FAILED,
    "canceled": Page.Status.FAILED,
}


_CALL_STATUS = {
    "queued": Page.Status.SENT,
    "initiated": Page.Status.SENT,
    "ringing": Page.Status.SENT,
    "in-progress": Page.Status.ANSWERED,
    "answered": Page.Status.ANSWERED,
    "completed": Page.Status.ANSWERED,
    "busy": Page.Status.BUSY,
    "no-answer": Page.Status.NO_ANSWER,
    "failed": Page.Status.FAILED,
    "canceled": Page.Status.NO_ANSWER,
}


def answered_by_machine(answered_by: str | None) -> bool:
    """AMD: a voicemail box or fax picked up. The person was not reached."""
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")


def _mapped_status(channel: str, provider_status: str, answered_by: str | None) -> str | None:
    provider_status = (provider_status or "").strip().lower()
    if channel == Page.Channel.VOICE:
        status = _CALL_STATUS.get(provider_status)
        if status == Page.Status.ANSWERED and answered_by_machine(answered_by):
            return Page.Status.NO_ANSWER
        return status
    return _SMS_STATUS.get(provider_status)


def _transition_allowed(current: str, new: str, *, machine: bool) -> bool:
    if current == new:
        return False
    if current in (Page.Status.PENDING, Page.Status.SENDING, Page.Status.SENT):
        return True
    # Terminal: the first terminal status wins (callbacks are retried and arrive out of order), except
    # that AMD may turn an "answered" call into "voicemail picked up".
    return current == Page.Status.ANSWERED and new == Page.Status.NO_ANSWER and machine


def page_status_update(
    *,
    page_id: int,
    provider_status: str,
    provider_id: str,
    answered_by: str | None = None,
    now: datetime | None = None,
) -> StatusUpdate:
    """Apply a Twilio status callback. Idempotent: a retried or stale callback changes nothing."""
    now = now or timezone.now()
    promoted: list[int] = []
    with transaction.atomic():
        page = Page.objects.select_for_update().filter(pk=page_id).first()
        if page is None:
            return StatusUpdate(False, "")
        new = _mapped_status(page.channel, provider_status, answered_by)
        if new is None or page.status in (Page.Status.BUNDLED, Page.Status.CANCELED):
            return StatusUpdate(False, page.status)
        if page.provider_id and provider_id and page.provider_id != provider_id:
            logger.warning("page %s: callback for %s, but page has %s", page_id, provider_id, page.provider_id)
            return StatusUpdate(False, page.status)
        machine = answered_by_machine(answered_by)
        if not _transition_allowed(page.status, new, machine=machine):
            if not page.provider_id and provider_id:
                Page.objects.filter(pk=page_id).update(provider_id=provider_id)
            return StatusUpdate(False, page.status)
        updates = {"status": new, "status_at": now}
        if provider_id and not page.provider_id:
            updates["provider_id"] = provider_id
        if page.sent_at is None:
            updates["sent_at"] = now
        Page.objects.filter(pk=page_id).update(**updates)
        page = Page.objects.select_related("user", "incident").get(pk=page_id)
        label = _channel_label(page.channel)
        if new in NOT_REACHED:
            why = {
                Page.Status.FAILED: "failed",
                Page.Status.NO_ANSWER: "voicemail picked up" if machine else "not answered",
                Page.Status.BUSY: "busy",
            }[new]
            _timeline(
                page,
                TimelineEvent.Kind.PAGE_FAILED,
                f"Page to {_who(page)} by {label} ({page.destination}): {why}",
                now,
                {"provider_status": provider_status, "answered_by": answered_by or ""},
            )
            for p in [page, *Page.objects.filter(bundled_into=page).select_related("user")]:
                promoted += _promote_next_rule(p, now)
        elif new in (Page.Status.DELIVERED, Page.Status.ANSWERED):
            what = "delivered to" if new == Page.Status.DELIVERED else "answered by"
            _timeline(
                page,
                TimelineEvent.Kind.PAGE_STATUS,
                f"{label.capitalize()} page {what} {_who(page)} ({page.destination})",
                now,
                {"provider_status": provider_status, "answered_by": answered_by or ""},
            )
    return StatusUpdate(True, new, promoted)
