"""E-mail channel (Django mail).

E-mail is at-least-once: SMTP gives no way to ask whether a message was accepted before a crash,
so reconciliation resends. The Message-ID is derived from the page id, so mail clients and
servers that deduplicate on Message-ID collapse a resend into one message.
"""

from __future__ import annotations

import smtplib
from datetime import datetime
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid

from escalations.delivery.channels.base import OutgoingMessage, PermanentChannelError, SendResult, TemporaryChannelError


def subject_line(subject: str) -> str:
    """One header line: a line break from a team name or an alert title would make Django refuse the
    whole message (BadHeaderError) and the page would never go out."""
    return " ".join(subject.split())


def message_id_for(message: OutgoingMessage) -> str:
    domain = urlparse(settings.PUBLIC_BASE_URL).hostname or "backstop.local"
    if message.page_id is None:
        # Not a page (a notice, a verification code): a fresh id, or servers that deduplicate on
        # Message-ID would drop every such message after the first.
        return make_msgid("backstop-notice", domain=domain)
    return f"<backstop-page-{message.page_id}@{domain}>"


class EmailChannel:
    kind = "email"

    def send(self, message: OutgoingMessage) -> SendResult:
        msg_id = message_id_for(message)
        email = EmailMessage(
            subject=subject_line(message.subject),
            body=message.body,
            to=[message.to],
            headers={"Message-ID": msg_id, "Auto-Submitted": "auto-generated"},
        )
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentChannelError(f"recipient refused: {exc.recipients}") from exc
        except (smtplib.SMTPException, OSError) as exc:  # OSError covers timeouts
            raise TemporaryChannelError(f"SMTP error: {exc}") from exc
        return SendResult(provider_id=msg_id, status="sent")

    def find_sent(self, message: OutgoingMessage, *, since: datetime, exclude_ids: set[str]) -> str | None:
        return None  # SMTP cannot be asked: at-least-once (see module docstring)
