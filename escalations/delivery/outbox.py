"""The outbox (Twilio not configured): who may read which message, and from which numbers one may answer.

The outbox stands in for each person's own phone. A message is shown only to the person it was sent to,
and only while it went to one of their *verified* numbers; a verification code only to the person who
asked for it (the method it verifies is theirs). Anyone may add any number as an unverified method, so
a number is never proof of who someone is. Staff see their own messages plus those to people outside
Backstop (a caller's SMS confirmation from the emergency line, which staff replay with the simulator);
never a colleague's pages or codes, and they answer only as themselves (the Django admin keeps the
full table for support).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from escalations.models import OutboxMessage
from portal.models import ContactMethod, User

PHONE_KINDS = (ContactMethod.Kind.SMS, ContactMethod.Kind.VOICE)


def outbox_verified_numbers(*, user: User, kinds: tuple[str, ...] = PHONE_KINDS) -> list[str]:
    """The person's verified phone numbers of `kinds`, each once, oldest method first."""
    values = (
        ContactMethod.objects.filter(user=user, kind__in=kinds, verified_at__isnull=False)
        .order_by("pk")
        .values_list("value", flat=True)
    )
    return list(dict.fromkeys(values))


def outbox_messages_visible(*, user: User) -> QuerySet[OutboxMessage]:
    mine = Q(recipient=user, verifies__isnull=True, to__in=outbox_verified_numbers(user=user))
    codes = Q(recipient=user, verifies__user=user)
    visible = mine | codes
    if user.is_staff:
        visible |= Q(recipient__isnull=True, verifies__isnull=True) & ~Q(to__in=ContactMethod.objects.values("value"))
    return (
        OutboxMessage.objects.filter(visible)
        .select_related("page", "page__user", "incident")
        .order_by("-created_at", "-id")
    )
