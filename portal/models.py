"""Accounts: users, their verified contact methods, personal notification rules, API tokens."""

import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q


def new_token() -> str:
    return secrets.token_urlsafe(24)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person. `is_staff` is the staff role; team roles live on rotations.Membership."""

    username = None
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    ical_token = models.CharField(max_length=64, unique=True, default=new_token)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        ordering = ["full_name", "email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email.split("@")[0]

    @property
    def initials(self) -> str:
        parts = (self.full_name or self.email).replace("@", " ").replace(".", " ").split()
        return "".join(p[0] for p in parts[:2]).upper()


class ContactMethod(models.Model):
    """A way to reach a person. Only verified methods are paged."""

    class Kind(models.TextChoices):
        SMS = "sms", "SMS"
        VOICE = "voice", "Voice call"
        EMAIL = "email", "E-mail"
        # The value is the person's Slack user id, found from their e-mail (users.lookupByEmail).
        SLACK = "slack", "Slack"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="contact_methods")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=254, help_text="E.164 phone number, e-mail address or Slack user id")
    label = models.CharField(max_length=60, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_code_hash = models.CharField(max_length=128, blank=True)
    verification_sent_at = models.DateTimeField(null=True, blank=True)
    verification_attempts = models.PositiveSmallIntegerField(default=0)
    # Carrier-level STOP: we must not text this number until it sends START.
    opted_out_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id", "kind", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "value"], name="contact_method_unique_per_user"),
        ]
        indexes = [models.Index(fields=["value"], name="contact_method_value_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value}"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class NotificationRule(models.Model):
    """Personal rule: when a step pages me, use this method after this delay (SMS at 0, voice at 2 min...)."""

    class Urgency(models.TextChoices):
        ANY = "any", "Any urgency"
        HIGH = "high", "High urgency"
        LOW = "low", "Low urgency"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notification_rules")
    contact_method = models.ForeignKey(ContactMethod, on_delete=models.CASCADE, related_name="rules")
    delay = models.DurationField(help_text="After the step pages you")
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.ANY)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["user_id", "order", "delay", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(delay__gte=timedelta(0)), name="notification_rule_delay_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_method} after {self.delay}"


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class JobRun(models.Model):
    """Last run of each periodic job, so /readyz and the portal can show a stalled beat."""

    name = models.CharField(max_length=100, primary_key=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class InsightsRollup(models.Model):
    """Insights over one period's past days, per team and for every team (team empty), for the Insights
    pages of one UTC date; the page aggregates the rest live (today, and the minutes up to the first
    whole hour of the period). Written only by portal.insights.rollup; tallies are metrics.Tally.to_json()."""

    team = models.ForeignKey("rotations.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    days = models.PositiveSmallIntegerField(help_text="The period: 7, 30 or 90 days")
    as_of = models.DateField(help_text="The UTC date whose pages this serves")
    tally = models.JSONField(help_text="The period's whole days after the first, up to covers_until")
    hours = models.JSONField(default=dict, help_text="The period's first (partial) day, hour by hour")
    covers_until = models.DateTimeField(help_text="Incidents opened from here on are aggregated live")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["as_of", "days", "team"], condition=Q(team__isnull=False), name="insights_rollup_team_unique"
            ),
            # The every-team row also says that the run for (as_of, days) is complete.
            models.UniqueConstraint(
                fields=["as_of", "days"], condition=Q(team__isnull=True), name="insights_rollup_all_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team_id or 'all'} {self.days} d as of {self.as_of}"


class ImportedObject(models.Model):
    """What an on-call import (portal.importers) made from one vendor object, keyed by the vendor's id,
    so running the import again creates nothing new."""

    source = models.CharField(max_length=20, help_text="pagerduty, opsgenie, grafana_oncall")
    kind = models.CharField(max_length=20, help_text="user, team, rotation, override, policy, integration, ...")
    external_id = models.CharField(max_length=200)
    object_type = models.CharField(max_length=60, help_text="app_label.model of the object made")
    object_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "kind", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "kind", "external_id"], name="imported_object_unique_external")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.external_id} -> {self.object_type}#{self.object_id}"
