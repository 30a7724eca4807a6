"""Emergency line lookups: numbers, lines, business hours, and how a call is labelled."""

from __future__ import annotations

import logging
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.urls import reverse

from escalations.models import (
    CallRecord,
    CustomerContact,
    CustomerPhone,
    PhoneLine,
)
from rotations.models import Team

logger = logging.getLogger(__name__)


def phone_normalize(number: str) -> str:
    """E.164 when the number parses; otherwise the input, trimmed (e.g. 'anonymous')."""
    raw = (number or "").strip()
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def caller_identify(*, number: str) -> CustomerContact | None:
    phone = CustomerPhone.objects.select_related("contact").filter(number=phone_normalize(number)).first()
    return phone.contact if phone else None


def line_for_number(*, number: str) -> PhoneLine | None:
    return PhoneLine.objects.select_related("team", "policy").filter(number=phone_normalize(number)).first()


def line_in_business_hours(*, line: PhoneLine, at: datetime) -> bool:
    """True when no windows are configured or `at` falls in one (in the line's time zone)."""
    windows = line.business_hours or []
    if not windows:
        return True
    try:
        local = at.astimezone(ZoneInfo(line.time_zone))
    except (ZoneInfoNotFoundError, ValueError):
        local = at
    for window in windows:
        try:
            days = set(window.get("days", range(7)))
            start = time.fromisoformat(window["start"])
            end = time.fromisoformat(window["end"])
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.warning("Ignoring malformed business-hours window %r on line %s", window, line.pk)
            continue
        if local.weekday() in days and start <= local.time() < end:
            return True
    return False


def call_team(record: CallRecord) -> Team | None:
    return record.team


def call_recording_path(record: CallRecord) -> str:
    return reverse("calls:recording", args=[record.pk])


def caller_label(record: CallRecord) -> str:
    contact = record.customer_contact
    if contact is None:
        return record.from_number or "an unknown number"
    if contact.name:
        return f"{contact.name} ({contact.organisation})"
    return contact.organisation
