"""The one way shift notices leave Backstop.

Until the paging channels (`escalations.channels`, branch `delivery`) land on main, only e-mail is
sent, with Django's send_mail; other kinds are skipped and reported as not sent. Switch the inside of
``handover_message_send`` to ``channel_for(kind)`` then; callers do not change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail

if TYPE_CHECKING:
    from portal.models import User

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Backstop] "


def handover_message_send(*, user: User, subject: str, body: str, kinds: Sequence[str]) -> list[str]:
    """Send a shift notice to a person by each of `kinds`; returns the kinds that went out.

    Never call inside a transaction: callers insert their "sent once" row, commit, then send.
    """
    sent: list[str] = []
    for kind in dict.fromkeys(kinds or ("email",)):
        if kind == "email":
            if not user.email:
                continue
            send_mail(SUBJECT_PREFIX + subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
            sent.append(kind)
        else:
            # SMS/voice need the delivery branch's channels; nothing to send through yet.
            log.info("shift notice kind %s not available yet; skipped for user %s", kind, user.pk)
    return sent


def team_message_send(*, address: str, subject: str, body: str) -> None:
    """A team's shared mailbox (Team.handover_email)."""
    send_mail(SUBJECT_PREFIX + subject, body, settings.DEFAULT_FROM_EMAIL, [address])
