"""The one way shift notices (handovers, reminders, roster changes, gap alerts) leave Backstop.

They go through the paging channels (`escalations.delivery.channels.channel_for`): e-mail to the account
address, SMS to each of the person's verified numbers that has not opted out (STOP). Without Twilio
configured the SMS channel is the console outbox, so the demo's outbox shows the notices.

A notice is best effort per channel: a provider error is logged and that channel counts as not sent;
it never raises, so one dead number cannot make a handover be claimed and re-sent by e-mail again.
Never call inside a transaction: callers insert their "sent once" row, commit, then send.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from escalations.delivery.channels import ChannelError, OutgoingMessage, channel_for
from portal.models import ContactMethod

if TYPE_CHECKING:
    from portal.models import User

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Backstop] "
# Three concatenated SMS segments: enough for a reminder or a short handover, not a whole digest.
SMS_MAX_CHARS = 459


def sms_text(subject: str, body: str) -> str:
    """Subject first (it carries the news), then as much of the body as fits."""
    text = f"Backstop: {subject}"
    rest = body.strip()
    if rest.startswith(subject):
        rest = rest[len(subject) :].lstrip(". \n")
    if rest:
        text += "\n" + rest
    if len(text) > SMS_MAX_CHARS:
        text = text[: SMS_MAX_CHARS - 1].rstrip() + "…"
    return text


def sms_numbers(user: User) -> list[str]:
    """The person's verified, not opted-out SMS numbers (each once)."""
    values = (
        ContactMethod.objects.filter(
            user=user, kind=ContactMethod.Kind.SMS, verified_at__isnull=False, opted_out_at__isnull=True
        )
        .order_by("pk")
        .values_list("value", flat=True)
    )
    return list(dict.fromkeys(values))


def _send(message: OutgoingMessage, user_id: int | None) -> bool:
    try:
        channel_for(message.channel).send(message)
    except ChannelError as exc:
        log.warning("shift notice by %s to user %s failed: %s", message.channel, user_id, exc)
        return False
    return True


def handover_message_send(*, user: User, subject: str, body: str, kinds: Sequence[str]) -> list[str]:
    """Send a shift notice to a person by each of `kinds` ("email", "sms"); returns the kinds that went out."""
    sent: list[str] = []
    for kind in dict.fromkeys(kinds or ("email",)):
        if kind == "email":
            if user.email and _send(
                OutgoingMessage(
                    channel="email",
                    to=user.email,
                    subject=SUBJECT_PREFIX + subject,
                    body=body,
                    kind="notice",
                    user_id=user.pk,
                ),
                user.pk,
            ):
                sent.append(kind)
        elif kind == "sms":
            text = sms_text(subject, body)
            results = [
                _send(OutgoingMessage(channel="sms", to=number, body=text, kind="notice", user_id=user.pk), user.pk)
                for number in sms_numbers(user)
            ]
            if any(results):
                sent.append(kind)
        else:
            # Voice needs a page to read out; shift notices are not pages.
            log.info("shift notice kind %s not supported; skipped for user %s", kind, user.pk)
    return sent


def sms_send(*, user: User, text: str) -> list[str]:
    """A ready-made SMS text (e.g. one that asks for a reply code) to each of the person's numbers."""
    results = [
        _send(OutgoingMessage(channel="sms", to=number, body=text, kind="notice", user_id=user.pk), user.pk)
        for number in sms_numbers(user)
    ]
    return ["sms"] if any(results) else []


def team_message_send(*, address: str, subject: str, body: str) -> bool:
    """A team's shared mailbox (Team.handover_email); True if it went out."""
    return _send(
        OutgoingMessage(channel="email", to=address, subject=SUBJECT_PREFIX + subject, body=body, kind="notice"),
        None,
    )
