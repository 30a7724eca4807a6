"""Profile writes: contact methods and their verification, notification rules, API tokens."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import zoneinfo
from datetime import UTC, datetime, timedelta

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from escalations.delivery.channels import OutgoingMessage, channel_for
from escalations.incidents.rules import pages_contact_method_withdraw, pages_rule_apply, pages_rule_withdraw
from portal.api_auth import token_generate, token_hash
from portal.models import ApiToken, ContactMethod, NotificationRule, User

logger = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(seconds=30)
Kind = ContactMethod.Kind


# ----------------------------------------------------------------------------- profile


def profile_update(*, user: User, full_name: str, time_zone: str) -> User:
    if time_zone not in zoneinfo.available_timezones():
        raise ValidationError({"time_zone": [f"{time_zone!r} is not a known time zone (e.g. Europe/Berlin)."]})
    user.full_name = full_name.strip()[:150]
    user.time_zone = time_zone
    user.save(update_fields=["full_name", "time_zone"])
    return user


# ---------------------------------------------------------------------- contact methods


def phone_normalise(value: str) -> str:
    """E.164 or ValidationError saying what is wrong."""
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            {
                "value": [
                    "Enter the number in international format with a leading + and country code, e.g. +4915123456789."
                ]
            }
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError({"value": [f"{value.strip()} is not a valid phone number for its country."]})
    phone_country_check(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_country_allowed(number: phonenumbers.PhoneNumber) -> bool:
    """BACKSTOP_PHONE_COUNTRIES: ISO 3166 codes ("DE") or calling codes ("+49", "49"); empty allows all."""
    allowed = [str(entry).strip().upper() for entry in settings.BACKSTOP_PHONE_COUNTRIES if str(entry).strip()]
    if not allowed:
        return True
    region = phonenumbers.region_code_for_number(number) or ""
    calling = str(number.country_code)
    return any(entry == region or entry.lstrip("+") == calling for entry in allowed)


def phone_country_check(number: phonenumbers.PhoneNumber) -> None:
    # Texting or calling premium-rate destinations is how verification codes get abused for toll fraud.
    if not phone_country_allowed(number):
        raise ValidationError(
            {
                "value": [
                    f"Numbers in {phonenumbers.region_code_for_number(number) or '+' + str(number.country_code)} "
                    "cannot be used here. Ask staff which countries Backstop may text and call."
                ]
            }
        )


def contact_method_add(*, user: User, kind: str, value: str, label: str = "") -> ContactMethod:
    """Add an unverified method; it is paged only once verified."""
    if kind not in Kind.values or kind == Kind.SLACK:
        # Slack: escalations.slack.services.slack_contact_method_connect (the id comes from Slack).
        raise ValidationError({"kind": ["Choose SMS, voice call or e-mail."]})
    if kind == Kind.EMAIL:
        value = value.strip().lower()
        try:
            validate_email(value)
        except ValidationError:
            raise ValidationError({"value": [f"{value!r} is not a valid e-mail address."]}) from None
    else:
        value = phone_normalise(value)
    with transaction.atomic():
        # Locking the person serialises their adds, so the cap holds under concurrent requests.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if ContactMethod.objects.filter(user=user, kind=kind, value=value).exists():
            raise ValidationError({"value": [f"You already have {Kind(kind).label} {value}."]})
        limit = settings.BACKSTOP_MAX_CONTACT_METHODS
        if limit and ContactMethod.objects.filter(user=user).count() >= limit:
            raise ValidationError(
                f"You have {limit} contact methods, the most one person may have. Delete one to add another."
            )
        return ContactMethod.objects.create(user=user, kind=kind, value=value, label=label.strip()[:60])


def _code_hash(method: ContactMethod, code: str) -> str:
    # Keyed by the server secret and the method, so a leaked hash cannot be brute-forced offline
    # without the key and is useless for any other method.
    key = f"{settings.SECRET_KEY}:contact-method:{method.pk}:{method.value}".encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def _code_deliver(method: ContactMethod, code: str) -> None:
    body = f"Your Backstop verification code is {code}. It expires in 10 minutes."
    if method.kind == Kind.VOICE:
        body = "Your Backstop verification code is " + ", ".join(code) + ". Again: " + ", ".join(code) + "."

    channel_for(method.kind).send(
        OutgoingMessage(
            channel=method.kind,
            to=method.value,
            body=body,
            subject="Backstop verification code",
            kind="notice",
            user_id=method.user_id,
            contact_method_id=method.pk,
        )
    )


def _daily_count_take(key: str, limit: int) -> bool:
    """Count one send against `key` (a cache counter living two days); False when over `limit`."""
    cache.add(key, 0, timeout=2 * 24 * 3600)
    try:
        return cache.incr(key) <= limit
    except ValueError:  # evicted between add and incr
        cache.add(key, 1, timeout=2 * 24 * 3600)
        return True


def _verification_quota_take(method: ContactMethod, now: datetime) -> None:
    """Each code is an SMS, a call or an e-mail someone pays for: at most so many a day per person and
    per destination (whoever asks for it), counted in the cache shared by every process."""
    day = now.astimezone(UTC).date().isoformat()
    destination_digest = hashlib.sha256(method.value.encode()).hexdigest()[:32]
    per_destination = settings.BACKSTOP_VERIFICATION_SENDS_PER_DESTINATION_PER_DAY
    per_user = settings.BACKSTOP_VERIFICATION_SENDS_PER_USER_PER_DAY
    if per_destination and not _daily_count_take(f"verify-sends:dest:{destination_digest}:{day}", per_destination):
        raise ValidationError(
            f"{method} has had {per_destination} verification codes today, the most we send to one destination "
            "in a day. Try again tomorrow."
        )
    if per_user and not _daily_count_take(f"verify-sends:user:{method.user_id}:{day}", per_user):
        raise ValidationError(
            f"You have asked for {per_user} verification codes today, the most we send for one person in a day. "
            "Try again tomorrow."
        )


def contact_method_verification_send(*, method: ContactMethod, now: datetime | None = None) -> None:
    """Send a fresh 6-digit code (valid 10 minutes, 5 attempts). Delivered after commit."""
    now = now or timezone.now()
    if method.verification_sent_at and now - method.verification_sent_at < RESEND_AFTER:
        wait = int((RESEND_AFTER - (now - method.verification_sent_at)).total_seconds()) + 1
        raise ValidationError(f"A code was just sent. Wait {wait} seconds before asking for another.")
    if method.kind != Kind.EMAIL:
        # The allow-list may have shrunk since the number was added.
        phone_country_check(phonenumbers.parse(method.value, None))
    _verification_quota_take(method, now)
    code = f"{secrets.randbelow(10**6):06d}"
    method.verification_code_hash = _code_hash(method, code)
    method.verification_sent_at = now
    method.verification_attempts = 0
    method.save(update_fields=["verification_code_hash", "verification_sent_at", "verification_attempts"])
    transaction.on_commit(lambda: _code_deliver(method, code), robust=True)


def contact_method_verify(*, method: ContactMethod, code: str, now: datetime | None = None) -> None:
    """Mark verified if `code` is right; ValidationError saying why not otherwise."""
    now = now or timezone.now()
    problem = ""
    # The error is raised after the block: raising inside would roll back the counted attempt.
    with transaction.atomic():
        locked = ContactMethod.objects.select_for_update().get(pk=method.pk)
        if locked.verified_at is not None:
            return
        if not locked.verification_code_hash or locked.verification_sent_at is None:
            problem = "No code has been sent yet. Send a code first."
        elif now - locked.verification_sent_at > CODE_TTL:
            problem = "That code has expired (codes last 10 minutes). Send a new one."
        elif locked.verification_attempts >= MAX_ATTEMPTS:
            problem = "Too many wrong codes. Send a new one."
        elif not hmac.compare_digest(
            locked.verification_code_hash, _code_hash(locked, (code or "").strip().replace(" ", ""))
        ):
            locked.verification_attempts += 1
            locked.save(update_fields=["verification_attempts"])
            left = MAX_ATTEMPTS - locked.verification_attempts
            problem = (
                f"That code is not right. {left} attempt(s) left."
                if left
                else ("Too many wrong codes. Send a new one.")
            )
        else:
            locked.verified_at = now
            locked.verification_code_hash = ""
            locked.save(update_fields=["verified_at", "verification_code_hash"])
    method.verified_at = locked.verified_at
    method.verification_code_hash = locked.verification_code_hash
    method.verification_attempts = locked.verification_attempts
    if problem:
        raise ValidationError(problem)


def contact_method_delete(*, method: ContactMethod, now: datetime | None = None) -> None:
    """Delete a method and its rules; pages still pending to it are canceled, never sent."""
    with transaction.atomic():
        pages_contact_method_withdraw(method=method, now=now or timezone.now())
        method.delete()


# --------------------------------------------------------------------- notification rules


def _rule_checked(*, user: User, contact_method: ContactMethod, delay: timedelta, urgency: str) -> None:
    if contact_method.user_id != user.pk:
        raise ValidationError({"contact_method": ["Choose one of your own contact methods."]})
    if delay < timedelta(0) or delay > timedelta(hours=2):
        raise ValidationError({"delay": ["The delay must be between 0 and 120 minutes."]})
    if urgency not in NotificationRule.Urgency.values:
        raise ValidationError({"urgency": ["Choose any, high or low urgency."]})


def notification_rule_add(
    *,
    user: User,
    contact_method: ContactMethod,
    delay: timedelta,
    urgency: str = NotificationRule.Urgency.ANY,
    now: datetime | None = None,
) -> NotificationRule:
    """Add a rule. Incidents paging this person right now use it from the next moment it is due
    (escalations.incidents.rules), never for a moment already past."""
    _rule_checked(user=user, contact_method=contact_method, delay=delay, urgency=urgency)
    with transaction.atomic():
        top = NotificationRule.objects.filter(user=user).aggregate(m=Max("order"))["m"]
        rule = NotificationRule.objects.create(
            user=user, contact_method=contact_method, delay=delay, urgency=urgency, order=0 if top is None else top + 1
        )
        pages_rule_apply(rule=rule, now=now or timezone.now())
    return rule


def notification_rule_update(
    *, rule: NotificationRule, delay: timedelta, urgency: str | None = None, now: datetime | None = None
) -> NotificationRule:
    """Change a rule's delay (and urgency). Pending pages for it are re-timed from when the step
    reached the person, or canceled if that moment has passed; a page already sent is not repeated."""
    urgency = rule.urgency if urgency is None else urgency
    _rule_checked(user=rule.user, contact_method=rule.contact_method, delay=delay, urgency=urgency)
    with transaction.atomic():
        rule.delay, rule.urgency = delay, urgency
        rule.save(update_fields=["delay", "urgency"])
        pages_rule_apply(rule=rule, now=now or timezone.now())
    return rule


def notification_rule_delete(*, rule: NotificationRule, now: datetime | None = None) -> None:
    """Delete a rule; its pages still pending are canceled, never sent."""
    with transaction.atomic():
        pages_rule_withdraw(rule_id=rule.pk, now=now or timezone.now())
        rule.delete()


def notification_rule_move(*, rule: NotificationRule, direction: int) -> None:
    """Swap with the neighbour above (-1) or below (+1); renumber so orders are 0..n-1."""
    with transaction.atomic():
        rules = list(
            NotificationRule.objects.select_for_update().filter(user_id=rule.user_id).order_by("order", "delay", "id")
        )
        index = next(i for i, r in enumerate(rules) if r.pk == rule.pk)
        other = index + direction
        if 0 <= other < len(rules):
            rules[index], rules[other] = rules[other], rules[index]
        for order, r in enumerate(rules):
            if r.order != order:
                r.order = order
        NotificationRule.objects.bulk_update(rules, ["order"])


# ----------------------------------------------------------------------------- API tokens


# Every token expires: a token leaked into a script or a CI log stops working on its own.
TOKEN_LIFETIME_DEFAULT = timedelta(days=90)
TOKEN_LIFETIME_MAX = timedelta(days=365)
TOKEN_LIFETIME_CHOICES_DAYS = (30, 90, 365)


def api_token_create(
    *, user: User, name: str, expires_at: datetime | None = None, now: datetime | None = None
) -> tuple[ApiToken, str]:
    """Returns the row and the raw token; only the hash is stored, so show the raw token once.

    Callers must only offer this to an interactive session (a person signed in, staff with their
    second factor), never to a request authenticated by another token: a leaked token must not be
    able to outlive its own expiry or revocation by minting successors.
    """
    now = now or timezone.now()
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Name the token after where it is used, e.g. 'laptop CLI'."]})
    expires_at = expires_at or now + TOKEN_LIFETIME_DEFAULT
    if expires_at <= now:
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    if expires_at > now + TOKEN_LIFETIME_MAX:
        raise ValidationError({"expires_at": ["A token lives at most one year."]})
    raw = token_generate()
    token = ApiToken.objects.create(
        user=user, name=name[:100], prefix=raw[:12], key_hash=token_hash(raw), expires_at=expires_at
    )
    return token, raw


def api_token_revoke(*, token: ApiToken, now: datetime | None = None) -> None:
    if token.revoked_at is None:
        token.revoked_at = now or timezone.now()
        token.save(update_fields=["revoked_at"])
