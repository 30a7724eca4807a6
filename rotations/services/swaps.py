"""Swap requests: "please take my shifts from … to …". Nothing changes on the roster until the
colleague accepts; acceptance creates the override through override_create (its checks and audit),
in the same transaction as the status change, so a request is accepted once or not at all.

The other person hears of each step after commit (task by name, then swap_notice_send): the colleague
when asked (SMS "reply YES 12 / NO 12", e-mail with signed one-click links), the requester when
answered, the colleague when withdrawn.

The e-mail links are the credential, so they carry what they may do and for whom: signed (SECRET_KEY,
a salt of their own) over the request, the colleague and the answer; expiring after
BACKSTOP_SWAP_LINK_MAX_AGE seconds; single use because a request is answered once (the row lock in
_decide), and acting only as the colleague through the same accept/decline services. Opening the link
only shows a confirmation; the answer needs the POST of that page (mail scanners fetch links)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from rotations import notify
from rotations.audit import audit_record, diff
from rotations.models import AuditEntry, Rotation, SwapRequest
from rotations.services.hooks import swap_request_noticed
from rotations.services.overrides import override_conflicts_check, override_create
from rotations.services.validation import team_paging_members_check, validate_span

log = logging.getLogger(__name__)

EVENT_ASKED, EVENT_ANSWERED, EVENT_WITHDRAWN = "asked", "answered", "withdrawn"
LINK_SALT = "backstop.rotations.swap-answer"
LINK_ACTIONS = ("accept", "decline")


def _state(s: SwapRequest) -> dict[str, Any]:
    return {"requester": s.requester_id, "taker": s.taker_id, "start": s.start, "end": s.end, "status": s.status}


@transaction.atomic
def swap_request_create(
    *, rotation: Rotation, requester: Any, taker: Any, start: datetime, end: datetime, reason: str = "", now: datetime
) -> SwapRequest:
    """The requester asks `taker` to take the requester's shifts of `rotation` in [start, end)."""
    if taker.pk == requester.pk:
        raise ValidationError({"taker": ["Ask a colleague, not yourself."]})
    team_paging_members_check(team=rotation.team, users=[requester], field="rotation")
    team_paging_members_check(team=rotation.team, users=[taker], field="taker")
    validate_span(start, end)
    if end <= now:
        raise ValidationError({"end": ["That window is over already."]})
    # Refuse now what acceptance would refuse (someone already takes these shifts, or the taker is busy).
    override_conflicts_check(
        rotation=rotation, user=taker, start=start, end=end, position=None, replaces_user=requester
    )
    swap = SwapRequest.objects.create(
        rotation=rotation, requester=requester, taker=taker, start=start, end=end, reason=reason, created_at=now
    )
    audit_record(
        actor=requester, team=rotation.team, action=AuditEntry.Action.CREATE, obj=swap, changes=diff({}, _state(swap))
    )
    swap_request_noticed(swap_id=swap.pk, event=EVENT_ASKED)
    return swap


def _decide(
    *, swap_id: int, actor: Any, allowed: str, status: str, now: datetime
) -> tuple[SwapRequest, dict[str, Any]]:
    """Lock the request, check who answers and that it is still open; set the new status (unsaved)."""
    swap = SwapRequest.objects.select_for_update().select_related("rotation__team").get(pk=swap_id)
    if getattr(swap, f"{allowed}_id") != actor.pk:
        raise PermissionDenied(f"Only the {allowed} can do that.")
    if swap.status != SwapRequest.Status.PENDING:
        raise ValidationError({"status": [f"This request is {swap.get_status_display().lower()} already."]})
    before = _state(swap)
    swap.status, swap.decided_at = status, now
    return swap, before


def _decided(swap: SwapRequest, before: dict, *, actor: Any, fields: list[str], event: str) -> SwapRequest:
    """Store the decision, audit it, and tell the other person once the transaction commits."""
    swap.save(update_fields=fields)
    audit_record(
        actor=actor,
        team=swap.rotation.team,
        action=AuditEntry.Action.UPDATE,
        obj=swap,
        changes=diff(before, _state(swap)),
    )
    swap_request_noticed(swap_id=swap.pk, event=event)
    return swap


@transaction.atomic
def swap_request_accept(*, swap_id: int, actor: Any, now: datetime) -> SwapRequest:
    swap, before = _decide(swap_id=swap_id, actor=actor, allowed="taker", status=SwapRequest.Status.ACCEPTED, now=now)
    swap.override = override_create(
        rotation=swap.rotation,
        user=swap.taker,
        start=swap.start,
        end=swap.end,
        replaces_user=swap.requester,
        reason=swap.reason or f"Swap request #{swap.pk}",
        actor=actor,
    )
    return _decided(swap, before, actor=actor, fields=["status", "decided_at", "override"], event=EVENT_ANSWERED)


@transaction.atomic
def swap_request_decline(*, swap_id: int, actor: Any, now: datetime) -> SwapRequest:
    swap, before = _decide(swap_id=swap_id, actor=actor, allowed="taker", status=SwapRequest.Status.DECLINED, now=now)
    return _decided(swap, before, actor=actor, fields=["status", "decided_at"], event=EVENT_ANSWERED)


@transaction.atomic
def swap_request_cancel(*, swap_id: int, actor: Any, now: datetime) -> SwapRequest:
    swap, before = _decide(
        swap_id=swap_id, actor=actor, allowed="requester", status=SwapRequest.Status.CANCELLED, now=now
    )
    return _decided(swap, before, actor=actor, fields=["status", "decided_at"], event=EVENT_WITHDRAWN)


# --------------------------------------------------------------------------- notices


def swap_answer_url(*, swap: SwapRequest, action: str) -> str:
    token = signing.dumps({"s": swap.pk, "u": swap.taker_id, "a": action}, salt=LINK_SALT)
    return settings.PUBLIC_BASE_URL + reverse("portal:swap_answer", args=[token])


def _window(swap: SwapRequest) -> str:
    start, end = timezone.localtime(swap.start), timezone.localtime(swap.end)
    return f"{swap.rotation.name}, {start:%a %d %b %H:%M} – {end:%a %d %b %H:%M} ({start:%Z})"


def swap_notice_send(*, swap_id: int, event: str) -> list[str]:
    """Tell the other person about a swap request's step; the kinds that went out.

    Once per request and step (a redelivered task does not send twice); a request that moved on since
    (answered before the "asked" notice went out) sends nothing stale.
    """
    swap = SwapRequest.objects.select_related("rotation", "requester", "taker").filter(pk=swap_id).first()
    if swap is None:
        return []
    expected = {
        EVENT_ASKED: (SwapRequest.Status.PENDING,),
        EVENT_ANSWERED: (SwapRequest.Status.ACCEPTED, SwapRequest.Status.DECLINED),
        EVENT_WITHDRAWN: (SwapRequest.Status.CANCELLED,),
    }.get(event)
    if expected is None or swap.status not in expected:
        return []
    if not cache.add(f"rotations:swap-notice:{swap.pk}:{event}", 1, timeout=7 * 24 * 3600):
        return []
    requester, taker = swap.requester, swap.taker
    portal = settings.PUBLIC_BASE_URL + reverse("portal:schedule")
    reason = f" ({swap.reason})" if swap.reason else ""
    if event == EVENT_ASKED:
        subject = f"{requester.display_name} asks you to take their shifts (swap #{swap.pk})"
        sms_subject = f"{requester.display_name} asks you to take {_window(swap)}{reason}"
        sms_body = f"Reply YES {swap.pk} to take them or NO {swap.pk} to decline."
        body = (
            f"{requester.display_name} asks you to take their shifts: {_window(swap)}{reason}.\n"
            "Nothing changes on the roster unless you accept.\n\n"
            f"Accept: {swap_answer_url(swap=swap, action='accept')}\n"
            f"Decline: {swap_answer_url(swap=swap, action='decline')}\n\n"
            f"Or reply YES {swap.pk} / NO {swap.pk} to the SMS, or answer on My schedule: {portal}"
        )
        return _both(taker, subject=subject, body=body, sms=notify.sms_text(sms_subject, sms_body))
    if event == EVENT_ANSWERED:
        verb = "accepted" if swap.status == SwapRequest.Status.ACCEPTED else "declined"
        subject = f"{taker.display_name} {verb} your swap #{swap.pk}"
        outcome = "They hold those shifts now." if verb == "accepted" else "Those shifts stay yours."
        body = f"{taker.display_name} {verb} to take {_window(swap)}. {outcome}\n{portal}"
        return _both(requester, subject=subject, body=body, sms=notify.sms_text(subject, body))
    subject = f"{requester.display_name} withdrew swap #{swap.pk}"
    body = f"{requester.display_name} no longer asks you to take {_window(swap)}. Nothing changed.\n{portal}"
    return _both(taker, subject=subject, body=body, sms=notify.sms_text(subject, body))


def _both(user: Any, *, subject: str, body: str, sms: str) -> list[str]:
    # The e-mail carries the links; the SMS carries the reply code (a link in an SMS is a phishing shape).
    sent = notify.handover_message_send(user=user, subject=subject, body=body, kinds=["email"])
    return sent + notify.sms_send(user=user, text=sms)


# --------------------------------------------------------------------------- one-click e-mail answers


class SwapLinkError(Exception):
    """The link cannot be used; the message is shown to the person as it is."""


@dataclass(frozen=True)
class SwapLink:
    swap: SwapRequest
    action: str


def swap_link_get(*, token: str) -> SwapLink:
    """The link's request and answer; SwapLinkError when tampered with, expired or already answered."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=settings.BACKSTOP_SWAP_LINK_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise SwapLinkError("This link has expired. Answer on My schedule in Backstop instead.") from exc
    except signing.BadSignature as exc:
        raise SwapLinkError("This link is not valid.") from exc
    try:
        swap_id, user_id, action = int(data["s"]), int(data["u"]), str(data["a"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SwapLinkError("This link is not valid.") from exc
    if action not in LINK_ACTIONS:
        raise SwapLinkError("This link is not valid.")
    swap = (
        SwapRequest.objects.select_related("rotation__team", "requester", "taker")
        .filter(pk=swap_id, taker_id=user_id)
        .first()
    )
    if swap is None:
        raise SwapLinkError("This link is no longer valid: the request is gone.")
    if swap.status != SwapRequest.Status.PENDING:
        raise SwapLinkError(f"This request is {swap.get_status_display().lower()} already.")
    if not swap.taker.is_active:
        raise SwapLinkError("This link is not valid.")
    return SwapLink(swap=swap, action=action)


def swap_link_use(*, token: str, now: datetime) -> SwapRequest:
    """Answer once, as the colleague asked."""
    link = swap_link_get(token=token)
    answer = swap_request_accept if link.action == "accept" else swap_request_decline
    try:
        return answer(swap_id=link.swap.pk, actor=link.swap.taker, now=now)
    except ValidationError as exc:  # answered meanwhile (a second click), or acceptance is refused now
        raise SwapLinkError(" ".join(exc.messages)) from exc
