"""Teams, rotations (with their eras), exclusions, overrides and the audit log."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q


def new_token() -> str:
    return secrets.token_urlsafe(24)


DEFAULT_POSITIONS = ["primary", "secondary"]


def default_positions() -> list[str]:
    return list(DEFAULT_POSITIONS)


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    escalation_policy = models.ForeignKey(
        "escalations.EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="default_for_teams",
        help_text="Policy used for incidents that do not name one",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")
    handover_email = models.EmailField(blank=True, help_text="Also send handover summaries here")
    # Slack (escalations.slack): the channel told of the team's incidents, and the user group kept
    # equal to the people on call. Empty = not used.
    slack_channel_id = models.CharField(max_length=20, blank=True)
    slack_usergroup_id = models.CharField(max_length=20, blank=True)
    ical_token = models.CharField(max_length=64, unique=True, default=new_token)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        MANAGER = "manager", "Team manager"
        ENGINEER = "engineer", "Engineer"
        VIEWER = "viewer", "Viewer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ENGINEER)

    class Meta:
        ordering = ["team_id", "role", "user_id"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.team}"


class Rotation(models.Model):
    """A roster cycling participants through one or more concurrent positions.

    Its definition (participants, shift length, handoff) lives in eras, so a change takes effect
    from a chosen moment and never reshuffles past shifts.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rotations")
    name = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64)
    positions = models.JSONField(default=default_positions, help_text='Position names, e.g. ["primary", "secondary"]')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team_id", "name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="rotation_name_unique_per_team")]

    def __str__(self) -> str:
        return f"{self.team}: {self.name}"


class RotationEra(models.Model):
    class Unit(models.TextChoices):
        HOURS = "hours", "Hours"
        DAYS = "days", "Days"
        WEEKS = "weeks", "Weeks"
        MONTHS = "months", "Months"

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="eras")
    effective_from = models.DateTimeField(help_text="This definition applies from here until the next one")
    start_date = models.DateField(help_text="Date of the first handoff, in the rotation's time zone")
    handoff_time = models.TimeField(help_text="Local time of day of every handoff")
    shift_unit = models.CharField(max_length=8, choices=Unit.choices, default=Unit.WEEKS)
    shift_length = models.PositiveIntegerField(default=1)
    # [{"weekday": null|0-6, "start": "08:00", "end": "20:00"}] in the rotation's local time.
    restrictions = models.JSONField(default=list, blank=True)
    cycle_offset = models.PositiveSmallIntegerField(
        default=0,
        help_text="Shift i from the anchor is led by participant (i + cycle_offset) mod headcount; "
        "set when the definition changes so the cycle continues instead of restarting",
    )
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="RotationParticipant", related_name="rotation_eras"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rotation_id", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "effective_from"], name="rotation_era_unique_start"),
            models.CheckConstraint(condition=Q(shift_length__gte=1), name="rotation_era_shift_length_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.rotation} from {self.effective_from:%Y-%m-%d %H:%M}"


class RotationParticipant(models.Model):
    era = models.ForeignKey(RotationEra, on_delete=models.CASCADE, related_name="participant_links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    order = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["era_id", "order"]
        constraints = [
            models.UniqueConstraint(fields=["era", "order"], name="rotation_participant_unique_order"),
            models.UniqueConstraint(fields=["era", "user"], name="rotation_participant_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.order + 1}. {self.user}"


class Exclusion(models.Model):
    """A person is unavailable (vacation, sick, holiday); the resolver routes around them."""

    class Kind(models.TextChoices):
        VACATION = "vacation", "Vacation"
        SICK = "sick", "Sick leave"
        HOLIDAY = "holiday", "Public holiday"
        OTHER = "other", "Other"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exclusions")
    start = models.DateTimeField()
    end = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VACATION)
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        constraints = [models.CheckConstraint(condition=Q(end__gt=F("start")), name="exclusion_end_after_start")]
        indexes = [models.Index(fields=["user", "end"], name="exclusion_user_end_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.get_kind_display()} {self.start:%Y-%m-%d}–{self.end:%Y-%m-%d}"


class Override(models.Model):
    """Someone takes a position, or a named person's shifts, for a window ("take the pager")."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="overrides")
    start = models.DateTimeField()
    end = models.DateTimeField()
    position = models.CharField(max_length=40, blank=True, help_text="Take this position…")
    replaces_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="overridden_by",
        help_text="…or take this person's shifts",
    )
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="override_end_after_start"),
            models.CheckConstraint(
                condition=~Q(position="") | Q(replaces_user__isnull=False),
                name="override_names_position_or_person",
            ),
        ]
        indexes = [models.Index(fields=["rotation", "end"], name="override_rotation_end_idx")]

    def __str__(self) -> str:
        what = self.position or f"shifts of {self.replaces_user}"
        return f"{self.user} takes {what} {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M}"


class AuditEntry(models.Model):
    """Who changed what on a roster or policy, and when. Append-only."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        DELETE = "delete", "Deleted"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    action = models.CharField(max_length=8, choices=Action.choices)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=40)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type} {self.object_repr}"
