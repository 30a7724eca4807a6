"""A person's shift-notice settings: reminder lead times and the channel of each kind of notice.

rotations.reminders, rotations.handover and rotations.roster_health read the row; a person without
one gets the model's defaults (e-mail, 24 h and 15 min before). Portal and admin write through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from portal.models import ContactMethod
from rotations.models import NotificationPreference

MAX_LEAD_MINUTES = 7 * 24 * 60  # the reminder beat looks this far ahead at most
MAX_LEADS = 6
KIND_FIELDS = ("reminder_kinds", "handover_kinds", "roster_change_kinds")


def notification_preference_get(*, user: Any) -> NotificationPreference:
    """The person's row, or an unsaved one holding the defaults they are served today."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(user=user)


def _leads_check(leads: Sequence[int]) -> list[int]:
    if len(leads) > MAX_LEADS:
        raise ValidationError({"reminder_lead_minutes": [f"At most {MAX_LEADS} reminders per shift."]})
    bad = [m for m in leads if not isinstance(m, int) or isinstance(m, bool) or not 0 < m <= MAX_LEAD_MINUTES]
    if bad:
        raise ValidationError(
            {"reminder_lead_minutes": [f"Each reminder is 1 minute to 7 days before the shift (got {bad[0]!r})."]}
        )
    return sorted(set(leads), reverse=True)


def _kinds_check(*, user: Any, field: str, kinds: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(kinds))
    if not chosen:
        raise ValidationError({field: ["Choose at least one channel."]})
    unknown = [k for k in chosen if k not in NotificationPreference.Kind.values]
    if unknown:
        raise ValidationError({field: [f"Choose from {', '.join(NotificationPreference.Kind.values)}."]})
    if NotificationPreference.Kind.SMS in chosen and not _has_sms(user):
        raise ValidationError({field: ["Add and verify an SMS number under Contact methods first."]})
    return chosen


def _has_sms(user: Any) -> bool:
    return ContactMethod.objects.filter(
        user=user, kind=ContactMethod.Kind.SMS, verified_at__isnull=False, opted_out_at__isnull=True
    ).exists()


@transaction.atomic
def notification_preference_set(
    *,
    user: Any,
    reminder_lead_minutes: Sequence[int],
    reminder_kinds: Sequence[str],
    handover_kinds: Sequence[str],
    roster_change_kinds: Sequence[str],
) -> NotificationPreference:
    """Validate everything first, then write the one row (no leads: no reminders)."""
    leads = _leads_check(reminder_lead_minutes)
    kinds = {
        field: _kinds_check(user=user, field=field, kinds=value)
        for field, value in zip(KIND_FIELDS, (reminder_kinds, handover_kinds, roster_change_kinds), strict=True)
    }
    pref, _ = NotificationPreference.objects.update_or_create(
        user=user, defaults={"reminder_lead_minutes": leads, **kinds}
    )
    return pref
