"""Shift handovers, reminders, roster-change notices and gap alerts.

Every "send once" record has a unique constraint: the row is inserted first (INSERT ... ON CONFLICT DO
NOTHING) and only the run whose insert succeeded sends, so two beats or a re-run never double-send.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

DEFAULT_REMINDER_LEADS = [1440, 15]  # minutes before a shift starts
DEFAULT_KINDS = ["email"]


def default_reminder_leads() -> list[int]:
    return list(DEFAULT_REMINDER_LEADS)


def default_kinds() -> list[str]:
    return list(DEFAULT_KINDS)


class NotificationPreference(models.Model):
    """Per-person shift notice settings; a person without a row gets the defaults."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "SMS"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    reminder_lead_minutes = models.JSONField(
        default=default_reminder_leads, blank=True, help_text="Minutes before a shift to remind me, e.g. [1440, 15]"
    )
    reminder_kinds = models.JSONField(default=default_kinds, blank=True, help_text='Channels, e.g. ["email", "sms"]')
    handover_kinds = models.JSONField(default=default_kinds, blank=True)
    roster_change_kinds = models.JSONField(default=default_kinds, blank=True)

    def __str__(self) -> str:
        return f"Shift notices for {self.user}"


class HandoverNote(models.Model):
    """What the outgoing person wants the next one to know; included in the handover message."""

    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="handover_notes")
    rotation = models.ForeignKey(
        "rotations.Rotation", null=True, blank=True, on_delete=models.CASCADE, related_name="handover_notes"
    )
    position = models.CharField(max_length=40, blank=True, help_text="Blank: any position")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="handover_notes")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    for_shift_end = models.DateTimeField(null=True, blank=True, help_text="The handoff this note is for")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["author", "team", "-created_at"], name="handover_note_author_idx")]

    def __str__(self) -> str:
        return f"Note by {self.author} for {self.team} ({self.created_at:%Y-%m-%d %H:%M})"


class Handover(models.Model):
    """One row per handoff of a position. (rotation, position, at) UNIQUE is the exactly-once guarantee."""

    rotation = models.ForeignKey("rotations.Rotation", on_delete=models.CASCADE, related_name="handovers")
    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="handovers")
    position = models.CharField(max_length=40)
    at = models.DateTimeField()
    outgoing_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    incoming_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The outgoing person holds another position of the team right after (secondary -> primary): they
    # keep their incidents and get only the incoming message.
    outgoing_stays_on_call = models.BooleanField(default=False)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField()
    # Set by the run that takes the sending; a stale claim (crash between insert and send) is retried.
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    late = models.BooleanField(default=False)
    incidents_handed = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    # The rotation scheduled a handoff here but an override kept the same person: logged, never sent.
    canceled_by_override = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "position", "at"], name="handover_once_per_handoff"),
        ]
        indexes = [
            models.Index(fields=["team", "-at"], name="handover_team_at_idx"),
            models.Index(fields=["due_at"], condition=models.Q(sent_at__isnull=True), name="handover_unsent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rotation} {self.position} {self.at:%Y-%m-%d %H:%M}"


class ShiftReminder(models.Model):
    """A before-shift reminder that went out (or was skipped as superseded by a shorter lead)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shift_reminders")
    rotation = models.ForeignKey("rotations.Rotation", on_delete=models.CASCADE, related_name="+")
    position = models.CharField(max_length=40)
    shift_start = models.DateTimeField()
    lead_minutes = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField()
    late = models.BooleanField(default=False)
    # False when a later lead was also due in the same run and only that one was sent.
    delivered = models.BooleanField(default=True)

    class Meta:
        ordering = ["-shift_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "rotation", "position", "shift_start", "lead_minutes"], name="shift_reminder_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.position} {self.shift_start:%Y-%m-%d %H:%M} -{self.lead_minutes}m"


class RosterChangeNotice(models.Model):
    """The person's upcoming shifts as last seen; the newest row is the baseline for the next comparison."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="roster_notices")
    digest = models.CharField(max_length=64)
    shifts = models.JSONField(default=list, blank=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    created_at = models.DateTimeField()
    # Null for a silent baseline (first look, or only the window moved).
    sent_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="roster_notice_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.created_at:%Y-%m-%d %H:%M} {self.digest[:8]}"


class GapAlert(models.Model):
    """A coverage problem told to the team managers once."""

    class Kind(models.TextChoices):
        GAP = "gap", "Nobody on call"
        EXCLUDED = "excluded", "On call during own exclusion"

    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="gap_alerts")
    position = models.CharField(max_length=40)
    start = models.DateTimeField()
    end = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.GAP)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField()
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            # Two partial indexes rather than nulls_distinct=False, which SQLite (the no-setup mode) lacks.
            models.UniqueConstraint(
                fields=["team", "position", "start", "end"],
                condition=models.Q(user__isnull=True),
                name="gap_alert_once",
            ),
            models.UniqueConstraint(
                fields=["team", "position", "start", "end", "user"],
                condition=models.Q(user__isnull=False),
                name="gap_alert_once_per_person",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.position} {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M}"


class HandoverCursor(models.Model):
    """Per rotation: handoffs up to here have been processed (the last successful run's `now`)."""

    rotation = models.OneToOneField("rotations.Rotation", on_delete=models.CASCADE, related_name="handover_cursor")
    processed_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.rotation} until {self.processed_until:%Y-%m-%d %H:%M}"
