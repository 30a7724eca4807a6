"""Inbound SMS replies: acknowledge, resolve or escalate by text, answer swap requests, and STOP/START.

Replies look like "123A" (acknowledge #123), "123R" (resolve), "123E" (escalate), with or without a
space, or a word ("ack 123"). A bare "A"/"ACK" acts on the newest incident paged to this number.
"YES 12" / "NO 12" (or "accept 12" / "decline 12") answer swap request #12; they always need the number
(a bare "YES" stays START, as carriers expect), and act only as the colleague the request asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

from escalations.incidents import services
from escalations.models import Incident, Page
from portal.models import ContactMethod, User
from portal.permissions import can_work_incidents
from rotations.models import SwapRequest
from rotations.services import swaps

ACTIONS = {
    "a": "acknowledge",
    "ack": "acknowledge",
    "acknowledge": "acknowledge",
    "r": "resolve",
    "res": "resolve",
    "resolve": "resolve",
    "e": "escalate",
    "esc": "escalate",
    "escalate": "escalate",
}
SWAP_ACTIONS = {
    "yes": "swap_accept",
    "y": "swap_accept",
    "accept": "swap_accept",
    "no": "swap_decline",
    "n": "swap_decline",
    "decline": "swap_decline",
}
STOP_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit"}
START_WORDS = {"start", "yes", "unstop"}
HELP_WORDS = {"help", "info"}

_CODE = re.compile(r"^\s*(?:#?(?P<n1>\d+)\s*(?P<a1>[a-z]+)|(?P<a2>[a-z]+)\s*#?(?P<n2>\d+)|(?P<a3>[a-z]+))\s*[.!]?\s*$")

HELP_TEXT = "Backstop: reply <number>A to acknowledge, <number>R to resolve, <number>E to escalate (e.g. 123A)."


@dataclass(frozen=True)
class ParsedReply:
    action: str | None  # acknowledge/resolve/escalate/swap_accept/swap_decline/stop/start/help, None if not understood
    incident_id: int | None
    swap_id: int | None = None


def sms_reply_parse(body: str) -> ParsedReply:
    text = (body or "").strip().lower()
    if text in STOP_WORDS:
        return ParsedReply("stop", None)
    if text in START_WORDS:
        return ParsedReply("start", None)
    if text in HELP_WORDS:
        return ParsedReply("help", None)
    match = _CODE.match(text)
    if not match:
        return ParsedReply(None, None)
    word = match["a1"] or match["a2"] or match["a3"]
    number = match["n1"] or match["n2"]
    if word in SWAP_ACTIONS and number:
        return ParsedReply(SWAP_ACTIONS[word], None, int(number))
    action = ACTIONS.get(word)
    if action is None:
        return ParsedReply(None, None)
    return ParsedReply(action, int(number) if number else None)


def _sender(from_number: str, as_user: User | None) -> User | None:
    methods = ContactMethod.objects.select_related("user").filter(
        kind__in=["sms", "voice"], value=from_number, verified_at__isnull=False, user__is_active=True
    )
    if as_user is not None:
        methods = methods.filter(user=as_user)
    method = methods.order_by("kind").first()
    return method.user if method else None


def _latest_paged_incident(from_number: str, user: User, *, own_pages_only: bool) -> Incident | None:
    pages = Page.objects.select_related("incident").filter(channel="sms")
    pages = pages.filter(user=user) if own_pages_only else pages.filter(Q(destination=from_number) | Q(user=user))
    page = pages.exclude(incident__status=Incident.Status.RESOLVED).order_by("-sent_at", "-id").first()
    return page.incident if page else None


def sms_reply_handle(*, from_number: str, body: str, as_user: User | None = None, now: datetime | None = None) -> str:
    """Act on an inbound SMS and return the text to answer with.

    From Twilio the number is all we know: the carrier vouches for it, so STOP/START apply to every
    method with it. From the outbox (`as_user`, the signed-in person) the number proves nothing, so the
    reply acts only as `as_user`, only through their own verified methods, and STOP/START touch only
    their methods.
    """
    now = now or timezone.now()
    parsed = sms_reply_parse(body)
    numbers = ContactMethod.objects.filter(kind="sms", value=from_number)
    if as_user is not None:
        numbers = numbers.filter(user=as_user, verified_at__isnull=False)
    if parsed.action == "stop":
        numbers.filter(opted_out_at__isnull=True).update(opted_out_at=now)
        return "Backstop: you will get no more SMS pages on this number. Reply START to resume."
    if parsed.action == "start":
        numbers.update(opted_out_at=None)
        return "Backstop: SMS pages resumed for this number."
    if parsed.action == "help":
        return HELP_TEXT
    user = _sender(from_number, as_user)
    if user is None:
        return "Backstop: this number is not a verified contact of any Backstop user."
    if parsed.action is None:
        return f"Backstop: sorry, I did not understand {body.strip()[:40]!r}. {HELP_TEXT}"
    if parsed.swap_id is not None:
        return _swap_answer(parsed.action, swap_id=parsed.swap_id, user=user, now=now)
    if parsed.incident_id is not None:
        incident = Incident.objects.select_related("team").filter(pk=parsed.incident_id).first()
        if incident is None:
            return f"Backstop: there is no incident #{parsed.incident_id}."
    else:
        incident = _latest_paged_incident(from_number, user, own_pages_only=as_user is not None)
        if incident is None:
            return "Backstop: no open incident was paged to you. Reply with the number, e.g. 123A."
    if not can_work_incidents(user, incident.team_id):
        return f"Backstop: you are not allowed to act on incident #{incident.pk}."
    return _act(parsed.action, incident=incident, user=user, now=now)


def _act(action: str, *, incident: Incident, user: User, now: datetime) -> str:
    if action == "acknowledge":
        changed = services.incident_acknowledge(incident=incident, by=user, via="sms", now=now)
        verb = "acknowledged" if changed else f"already {incident.status}"
    elif action == "resolve":
        changed = services.incident_resolve(incident=incident, by=user, via="sms", now=now)
        verb = "resolved" if changed else "already resolved"
    else:
        changed = services.incident_escalate(incident=incident, by=user, via="sms", now=now)
        verb = "escalated to the next step" if changed else "not escalated (it is resolved or has no policy)"
    return f"Backstop: #{incident.pk} {incident.title[:60]} — {verb}."


def _swap_answer(action: str, *, swap_id: int, user: User, now: datetime) -> str:
    # Only the colleague asked learns the request exists; anyone else hears "no such request".
    if not SwapRequest.objects.filter(pk=swap_id, taker=user).exists():
        return f"Backstop: there is no swap request #{swap_id} for you."
    answer = swaps.swap_request_accept if action == "swap_accept" else swaps.swap_request_decline
    try:
        swap = answer(swap_id=swap_id, actor=user, now=now)
    except (ValidationError, PermissionDenied) as exc:
        detail = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return f"Backstop: swap #{swap_id} not answered: {detail}"
    if swap.status == SwapRequest.Status.ACCEPTED:
        return f"Backstop: swap #{swap_id} accepted; you hold those shifts now."
    return f"Backstop: swap #{swap_id} declined; the shifts stay theirs."
