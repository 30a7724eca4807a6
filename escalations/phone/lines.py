"""Setting up the emergency line: phone lines, their menu options and the block list.

The portal's staff pages and the admin both write through these services, so both refuse the same
input (a number that is not a phone number, a connect target outside the line's team, a menu option
whose policy belongs to another team) and every change lands in the audit log.
"""

from __future__ import annotations

import copy
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from escalations.models import BlockedNumber, EscalationPolicy, PhoneLine, PhoneMenuOption
from escalations.phone.connect import phone_line_connect_targets_validate
from rotations.audit import audit_record, diff
from rotations.models import AuditEntry, Team

# The fields of a line the services write (everything but the id and created_at).
LINE_FIELDS = (
    "number",
    "name",
    "team",
    "policy",
    "greeting",
    "thank_you_message",
    "language",
    "voice",
    "max_recording_seconds",
    "business_hours_message",
    "business_hours",
    "time_zone",
    "menu_enabled",
    "menu_prompt",
    "connect_now_enabled",
    "connect_targets",
    "connect_timeout_seconds",
    "sms_confirmation",
    "max_calls_per_number_per_hour",
    "max_calls_per_line_per_hour",
    "enabled",
)
MENU_FIELDS = ("digit", "label", "team", "policy")


def phone_number_clean(raw: Any, *, field: str = "number") -> str:
    """An international phone number in E.164, or ValidationError {field: [why]}."""
    text = str(raw or "").strip()
    if not text:
        raise ValidationError({field: ["Give a phone number."]})
    if not text.startswith("+"):
        raise ValidationError({field: [f"{text!r}: write it in international format, e.g. +15550100999."]})
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValidationError({field: [f"{text!r} is not a phone number."]}) from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationError({field: [f"{text!r} is not a possible phone number (wrong length)."]})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def business_hours_validate(windows: Any) -> list[dict[str, Any]]:
    """[{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}, …] cleaned; start before end, 0 = Monday."""
    if windows in (None, ""):
        return []
    if not isinstance(windows, list):
        raise ValidationError({"business_hours": ["Give a list of windows."]})
    cleaned: list[dict[str, Any]] = []
    for index, window in enumerate(windows, start=1):
        where = f"Window {index}"
        if not isinstance(window, dict) or set(window) - {"days", "start", "end"}:
            raise ValidationError(
                {"business_hours": [f'{where}: use {{"days": [0,1], "start": "08:00", "end": "18:00"}}.']}
            )
        days = window.get("days", list(range(7)))
        if (
            not isinstance(days, list)
            or not days
            or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days)
        ):
            raise ValidationError({"business_hours": [f"{where}: days are 0 (Monday) to 6 (Sunday)."]})
        try:
            start, end = time.fromisoformat(str(window["start"])), time.fromisoformat(str(window["end"]))
        except (KeyError, ValueError):
            raise ValidationError({"business_hours": [f"{where}: start and end are times like 08:00."]}) from None
        if start >= end:
            raise ValidationError({"business_hours": [f"{where}: the start must be before the end."]})
        cleaned.append({"days": sorted(set(days)), "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")})
    return cleaned


def _line_state(line: PhoneLine) -> dict[str, Any]:
    return {field: getattr(line, f"{field}_id" if field in ("team", "policy") else field) for field in LINE_FIELDS}


def _line_apply(line: PhoneLine, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(LINE_FIELDS)
    if unknown:
        raise ValidationError({"__all__": [f"Unknown fields: {', '.join(sorted(unknown))}."]})
    for field, value in fields.items():
        setattr(line, field, value)
    errors: dict[str, list[str]] = {}
    try:
        line.number = phone_number_clean(line.number)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    team: Team | None = line.team if line.team_id else None
    policy: EscalationPolicy | None = line.policy if line.policy_id else None
    if team is not None and policy is not None and policy.team_id != team.pk:
        errors["policy"] = ["The policy belongs to another team."]
    if team is not None:
        try:
            line.connect_targets = phone_line_connect_targets_validate(team=team, targets=line.connect_targets)
        except ValidationError as exc:
            errors["connect_targets"] = exc.messages
    try:
        line.business_hours = business_hours_validate(line.business_hours)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        ZoneInfo(str(line.time_zone))
    except (ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = [f"Unknown time zone {line.time_zone!r}."]
    try:
        line.full_clean(exclude=list(errors))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, messages)
    if errors:
        raise ValidationError(errors)


def phone_line_check(*, fields: dict[str, Any], line: PhoneLine | None = None) -> None:
    """Validate a line's fields without saving (the admin form calls this in clean())."""
    _line_apply(copy.copy(line) if line is not None else PhoneLine(), dict(fields))


def _save(instance: PhoneLine | PhoneMenuOption | BlockedNumber, field: str, message: str) -> None:
    # The checks above ran before the row was locked: a concurrent write of the same number or digit
    # is caught by the unique constraint.
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ValidationError({field: [message]}) from None


@transaction.atomic
def phone_line_create(*, actor: Any, **fields: Any) -> PhoneLine:
    line = PhoneLine()
    _line_apply(line, fields)
    _save(line, "number", "Another line has this number.")
    audit_record(
        actor=actor, team=line.team, action=AuditEntry.Action.CREATE, obj=line, changes=diff({}, _line_state(line))
    )
    return line


@transaction.atomic
def phone_line_update(*, line: PhoneLine, actor: Any, **fields: Any) -> PhoneLine:
    line = PhoneLine.objects.select_for_update().get(pk=line.pk)
    before = _line_state(line)
    _line_apply(line, fields)
    _save(line, "number", "Another line has this number.")
    changes = diff(before, _line_state(line))
    if changes:
        audit_record(actor=actor, team=line.team, action=AuditEntry.Action.UPDATE, obj=line, changes=changes)
    return line


@transaction.atomic
def phone_line_delete(*, line: PhoneLine, actor: Any) -> None:
    """Delete a line with its menu; its calls stay in the log without it (SET_NULL)."""
    line = PhoneLine.objects.select_for_update().select_related("team").get(pk=line.pk)
    audit_record(
        actor=actor, team=line.team, action=AuditEntry.Action.DELETE, obj=line, changes=diff(_line_state(line), {})
    )
    line.delete()


# ------------------------------------------------------------------------------ menu options


def _option_state(option: PhoneMenuOption) -> dict[str, Any]:
    return {"line": option.line_id, "digit": option.digit, "label": option.label, "team": option.team_id,
            "policy": option.policy_id}  # fmt: skip


def _option_apply(option: PhoneMenuOption, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(MENU_FIELDS)
    if unknown:
        raise ValidationError({"__all__": [f"Unknown fields: {', '.join(sorted(unknown))}."]})
    for field, value in fields.items():
        setattr(option, field, value)
    errors: dict[str, list[str]] = {}
    if isinstance(option.label, str):
        option.label = option.label.strip()
    policy = option.policy if option.policy_id else None
    if policy is not None and option.team_id and policy.team_id != option.team_id:
        errors["policy"] = ["The policy belongs to another team than the option's."]
    digit_taken = (
        PhoneMenuOption.objects.filter(line_id=option.line_id, digit=option.digit).exclude(pk=option.pk).exists()
    )
    if isinstance(option.digit, int) and digit_taken:
        errors["digit"] = [f"Digit {option.digit} is already an option of this line."]
    try:
        # The line/digit uniqueness is checked above with a field error of its own.
        option.full_clean(exclude=list(errors), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, messages)
    if isinstance(option.digit, int) and not 1 <= option.digit <= 9:
        errors.setdefault("digit", ["Use a digit from 1 to 9 (0 connects to the engineer on call)."])
    if errors:
        raise ValidationError(errors)


def phone_menu_option_check(
    *, line: PhoneLine | None, fields: dict[str, Any], option: PhoneMenuOption | None = None
) -> None:
    """Validate an option's fields without saving (the admin's inline form calls this in clean())."""
    probe = copy.copy(option) if option is not None else PhoneMenuOption()
    if option is None and line is not None:
        probe.line = line
    _option_apply(probe, dict(fields))


@transaction.atomic
def phone_menu_option_create(*, line: PhoneLine, actor: Any, **fields: Any) -> PhoneMenuOption:
    line = PhoneLine.objects.select_for_update().get(pk=line.pk)
    option = PhoneMenuOption(line=line)
    _option_apply(option, fields)
    _save(option, "digit", "This digit is already an option of this line.")
    audit_record(
        actor=actor,
        team=line.team,
        action=AuditEntry.Action.CREATE,
        obj=option,
        changes=diff({}, _option_state(option)),
    )
    return option


@transaction.atomic
def phone_menu_option_update(*, option: PhoneMenuOption, actor: Any, **fields: Any) -> PhoneMenuOption:
    PhoneLine.objects.select_for_update().filter(pk=option.line_id).first()
    option = PhoneMenuOption.objects.select_related("line__team").get(pk=option.pk)
    before = _option_state(option)
    _option_apply(option, fields)
    _save(option, "digit", "This digit is already an option of this line.")
    changes = diff(before, _option_state(option))
    if changes:
        audit_record(actor=actor, team=option.line.team, action=AuditEntry.Action.UPDATE, obj=option, changes=changes)
    return option


@transaction.atomic
def phone_menu_option_delete(*, option: PhoneMenuOption, actor: Any) -> None:
    option = PhoneMenuOption.objects.select_related("line__team").get(pk=option.pk)
    audit_record(
        actor=actor,
        team=option.line.team,
        action=AuditEntry.Action.DELETE,
        obj=option,
        changes=diff(_option_state(option), {}),
    )
    option.delete()


# ------------------------------------------------------------------------------ block list


@transaction.atomic
def blocked_number_add(*, number: str, reason: str, actor: Any) -> BlockedNumber:
    """Calls from this number hear 'we cannot take calls from this number' and open nothing."""
    cleaned = phone_number_clean(number)
    if BlockedNumber.objects.filter(number=cleaned).exists():
        raise ValidationError({"number": [f"{cleaned} is already blocked."]})
    blocked = BlockedNumber(number=cleaned, reason=(reason or "").strip()[:200])
    if actor is not None and getattr(actor, "is_authenticated", False):
        blocked.created_by = actor
    _save(blocked, "number", f"{cleaned} is already blocked.")
    audit_record(
        actor=actor,
        team=None,
        action=AuditEntry.Action.CREATE,
        obj=blocked,
        changes={"number": [None, blocked.number], "reason": [None, blocked.reason]},
    )
    return blocked


@transaction.atomic
def blocked_number_remove(*, blocked: BlockedNumber, actor: Any) -> None:
    blocked = BlockedNumber.objects.select_for_update().get(pk=blocked.pk)
    audit_record(
        actor=actor,
        team=None,
        action=AuditEntry.Action.DELETE,
        obj=blocked,
        changes={"number": [blocked.number, None], "reason": [blocked.reason, None]},
    )
    blocked.delete()
