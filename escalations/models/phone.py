"""The emergency line: Twilio numbers customers call, who they are, and one log row per call."""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

e164 = RegexValidator(r"^\+[1-9]\d{6,14}$", "Use E.164, e.g. +15550100999.")

# Unambiguous when read aloud or typed from an SMS: no 0/O, 1/I/L.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def default_connect_targets() -> list[dict[str, str | int]]:
    """Whom 'connect me now' rings, in order: whoever holds these positions, then these people."""
    return [{"position": "primary"}, {"position": "secondary"}]


def new_call_reference() -> str:
    return "C-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))


class PhoneLine(models.Model):
    number = models.CharField(max_length=16, unique=True, validators=[e164], help_text="The Twilio number (E.164)")
    name = models.CharField(max_length=100)
    team = models.ForeignKey("rotations.Team", on_delete=models.PROTECT, related_name="phone_lines")
    policy = models.ForeignKey(
        "escalations.EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: the team's default policy",
    )
    greeting = models.TextField(
        default="You have reached the emergency line. Please leave a message after the tone, "
        "with your name, your company and what is happening. Press the pound key when you are done."
    )
    thank_you_message = models.TextField(
        default="Thank you. Your message has been passed to the engineer on call. Goodbye."
    )
    language = models.CharField(max_length=10, default="en-US")
    voice = models.CharField(max_length=40, default="Polly.Joanna", help_text="e.g. Polly.Joanna or alice")
    max_recording_seconds = models.PositiveSmallIntegerField(
        default=120,
        validators=[MinValueValidator(5), MaxValueValidator(3600)],
        help_text="Twilio only transcribes recordings of 2 to 120 seconds",
    )
    # Said after the greeting when the call arrives outside the windows below (if any).
    business_hours_message = models.TextField(
        blank=True,
        help_text="Said outside business hours, e.g. 'Our office is closed; this line pages the engineer on call.'",
    )
    business_hours = models.JSONField(
        default=list,
        blank=True,
        help_text='Windows in the line\'s time zone: [{"days": [0,1,2,3,4], "start": "08:00", "end": "18:00"}] '
        "(0 = Monday). Empty: always business hours.",
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    menu_enabled = models.BooleanField(default=False)
    menu_prompt = models.TextField(blank=True, help_text="Empty: built from the options' labels")
    connect_now_enabled = models.BooleanField(
        default=False, help_text="Offer 'press 0 to be connected to the engineer on call' (the targets below)"
    )
    connect_targets = models.JSONField(
        default=default_connect_targets,
        help_text='Rung in order: [{"position": "primary"}, {"user": 12}, …]; a position of the team\'s '
        "rotations or a member of the team.",
    )
    connect_timeout_seconds = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(5), MaxValueValidator(60)]
    )
    sms_confirmation = models.BooleanField(default=False, help_text="Text the caller a reference number")
    max_calls_per_number_per_hour = models.PositiveSmallIntegerField(default=5, help_text="0 = no limit")
    max_calls_per_line_per_hour = models.PositiveSmallIntegerField(default=60, help_text="0 = no limit")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"


class PhoneMenuOption(models.Model):
    line = models.ForeignKey(PhoneLine, on_delete=models.CASCADE, related_name="menu_options")
    digit = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(9)])
    label = models.CharField(max_length=100, help_text="Said as 'For <label>, press <digit>'")
    team = models.ForeignKey("rotations.Team", on_delete=models.PROTECT, related_name="+")
    policy = models.ForeignKey(
        "escalations.EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["line_id", "digit"]
        constraints = [
            models.UniqueConstraint(fields=["line", "digit"], name="menu_digit_unique_per_line"),
            models.CheckConstraint(condition=Q(digit__gte=1) & Q(digit__lte=9), name="menu_digit_1_to_9"),
        ]

    def __str__(self) -> str:
        return f"{self.digit}: {self.label}"


class CustomerContact(models.Model):
    organisation = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organisation", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.organisation})" if self.name else self.organisation


class CustomerPhone(models.Model):
    contact = models.ForeignKey(CustomerContact, on_delete=models.CASCADE, related_name="phones")
    number = models.CharField(max_length=16, unique=True, validators=[e164])

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class BlockedNumber(models.Model):
    number = models.CharField(max_length=16, unique=True, validators=[e164])
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class CallRecord(models.Model):
    """One inbound call, keyed by Twilio's CallSid. Every callback is appended to `events`."""

    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        VOICEMAIL = "voicemail", "Voicemail"
        HUNG_UP = "hung_up", "Hung up"
        TOO_SHORT = "too_short", "Recording too short"
        BLOCKED = "blocked", "Blocked"
        RATE_LIMITED = "rate_limited", "Rate limited"
        CONNECTED = "connected", "Connected to on-call"
        NOT_IN_SERVICE = "not_in_service", "Line unknown or disabled"

    class TranscriptStatus(models.TextChoices):
        NONE = "none", "None"
        PENDING = "pending", "Pending"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    call_sid = models.CharField(max_length=64, unique=True)
    line = models.ForeignKey(PhoneLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    from_number = models.CharField(max_length=32, db_index=True)
    to_number = models.CharField(max_length=32)
    menu_digit = models.PositiveSmallIntegerField(null=True, blank=True)
    menu_team = models.ForeignKey("rotations.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    call_status = models.CharField(max_length=20, blank=True, help_text="Twilio's last CallStatus")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.IN_PROGRESS)
    recording_sid = models.CharField(max_length=64, blank=True)
    recording_url = models.URLField(max_length=500, blank=True)
    recording_duration = models.PositiveIntegerField(null=True, blank=True)
    transcript_status = models.CharField(max_length=10, choices=TranscriptStatus.choices, default=TranscriptStatus.NONE)
    transcript = models.TextField(blank=True)
    caller_verified = models.BooleanField(default=False)
    customer_contact = models.ForeignKey(
        CustomerContact, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    incident = models.ForeignKey(
        "escalations.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    # True when this call opened the incident (its details are ours to update); False when the
    # call was added to an incident an earlier call from the same number had opened.
    incident_created = models.BooleanField(default=False)
    reference = models.CharField(max_length=12, unique=True, default=new_call_reference)
    connected_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sms_status = models.CharField(max_length=12, blank=True, help_text="queued / sent / failed / skipped")
    sms_sid = models.CharField(max_length=64, blank=True)
    simulated = models.BooleanField(default=False)
    events = models.JSONField(default=list, blank=True)
    # Bumped by every save (each Twilio callback saves the record): the incident page's live version
    # includes it, so a transcript or recording arriving later reaches an open page.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["line", "started_at"], name="call_line_started_idx"),
            models.Index(fields=["from_number", "started_at"], name="call_from_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} from {self.from_number} ({self.outcome})"

    @property
    def team(self):
        return self.menu_team or (self.line.team if self.line_id else None)
