"""Alert intake: integrations (where events come in), the raw record of every event, heartbeats,
maintenance windows and change events."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from escalations.intake.parsers import INTEGRATION_KEY_LENGTH


def integration_key_new() -> str:
    # 32 lowercase hex characters: the shape of a PagerDuty routing key, so existing clients accept it.
    return secrets.token_hex(INTEGRATION_KEY_LENGTH // 2)


class Integration(models.Model):
    class Kind(models.TextChoices):
        PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        GENERIC = "generic", "Generic webhook"
        HEARTBEAT = "heartbeat", "Heartbeat"
        OPSGENIE = "opsgenie", "Opsgenie Alert API"

    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    key = models.CharField(max_length=INTEGRATION_KEY_LENGTH, unique=True, default=integration_key_new)

    class UrgencyRule(models.TextChoices):
        SEVERITY = "severity", "From the event's severity (critical, error: high; warning, info: low)"
        ALWAYS_HIGH = "always_high", "Always high"
        ALWAYS_LOW = "always_low", "Always low"

    enabled = models.BooleanField(default=True)
    urgency_rule = models.CharField(max_length=12, choices=UrgencyRule.choices, default=UrgencyRule.SEVERITY)
    policy = models.ForeignKey(
        "escalations.EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="integrations",
        help_text="Escalate this integration's incidents with this policy instead of the team default",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team_id", "name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="integration_name_unique_per_team")]

    def __str__(self) -> str:
        return f"{self.team}: {self.name} ({self.get_kind_display()})"


class Alert(models.Model):
    """The raw record of every accepted event, whatever it did."""

    class Action(models.TextChoices):
        TRIGGER = "trigger", "Trigger"
        ACKNOWLEDGE = "acknowledge", "Acknowledge"
        RESOLVE = "resolve", "Resolve"

    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        IGNORED = "ignored", "No matching incident"
        SUPPRESSED = "suppressed", "Suppressed (maintenance)"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="alerts")
    incident = models.ForeignKey(
        "escalations.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    received_at = models.DateTimeField()
    action = models.CharField(max_length=12, choices=Action.choices)
    dedup_key = models.CharField(max_length=255, blank=True)
    fingerprint = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    summary = models.CharField(max_length=1024, blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["integration", "-received_at"], name="alert_integration_recv_idx"),
            models.Index(fields=["incident"], name="alert_incident_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.dedup_key or self.fingerprint}: {self.summary[:60]}"


class AlertGroupMember(models.Model):
    """One Alertmanager alert (by fingerprint) inside the group behind an incident."""

    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    incident = models.ForeignKey("escalations.Incident", on_delete=models.CASCADE, related_name="group_members")
    fingerprint = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=Status.choices)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["incident_id", "fingerprint"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "fingerprint"], name="group_member_unique_fingerprint"),
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint} ({self.status})"


class Heartbeat(models.Model):
    """A job that must ping us every `interval`; silence longer than interval + grace opens an incident."""

    class State(models.TextChoices):
        UP = "up", "Up"
        DOWN = "down", "Down"

    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="heartbeats")
    name = models.CharField(max_length=100)
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="heartbeats"
    )
    token = models.CharField(max_length=INTEGRATION_KEY_LENGTH, unique=True, default=integration_key_new)
    interval = models.DurationField(default=timedelta(minutes=5))
    grace = models.DurationField(default=timedelta(minutes=1))
    enabled = models.BooleanField(default=True)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=4, choices=State.choices, default=State.UP)
    open_incident = models.ForeignKey(
        "escalations.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["team_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="heartbeat_name_unique_per_team"),
            models.CheckConstraint(condition=Q(interval__gt=timedelta(0)), name="heartbeat_interval_positive"),
            models.CheckConstraint(condition=Q(grace__gte=timedelta(0)), name="heartbeat_grace_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.name} ({self.state})"


class MaintenanceWindow(models.Model):
    """Alerts during a window are recorded and open suppressed incidents that page nobody."""

    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="maintenance_windows")
    integration = models.ForeignKey(
        Integration,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="maintenance_windows",
        help_text="Empty: every integration of the team",
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start", "-id"]
        constraints = [models.CheckConstraint(condition=Q(end__gt=F("start")), name="maintenance_end_after_start")]
        indexes = [models.Index(fields=["team", "end"], name="maintenance_team_end_idx")]

    def __str__(self) -> str:
        return f"{self.team}: {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M} {self.reason}"


class ChangeEvent(models.Model):
    """A deploy or config change: shown on the team timeline, never pages."""

    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="change_events")
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="change_events"
    )
    summary = models.CharField(max_length=1024)
    source = models.CharField(max_length=255, blank=True)
    timestamp = models.DateTimeField()
    links = models.JSONField(default=list, blank=True)
    custom_details = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["team", "-timestamp"], name="change_team_ts_idx")]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M} {self.summary[:60]}"


class InboxEvent(models.Model):
    """An accepted, already-validated event waiting to be applied (the durable intake inbox).

    The HTTP request writes one row and answers 202; the drain (`escalations.intake.inbox`) applies pending
    rows in id order and sets `processed_at` in the same transaction as the effects, so every accepted
    event is applied exactly once. Processed rows are deleted after `BACKSTOP_INBOX_RETENTION`.
    """

    class Kind(models.TextChoices):
        PAGERDUTY = "pagerduty", "PagerDuty event"
        CHANGE = "change", "PagerDuty change event"
        ALERTMANAGER = "alertmanager", "Alertmanager webhook"
        GENERIC = "generic", "Generic webhook"
        OPSGENIE = "opsgenie", "Opsgenie Alert API request"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    action = models.CharField(max_length=12, blank=True)
    dedup_key = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why applying this event failed (it was then set aside)")
    # Opsgenie requests only: the requestId the sender was given, and what applying the request did,
    # so `GET v2/alerts/requests/{requestId}` can answer from this row.
    request_id = models.UUIDField(null=True, blank=True)
    incident = models.ForeignKey(
        "escalations.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    outcome = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(processed_at__isnull=True), name="inbox_pending_idx"),
            models.Index(fields=["processed_at"], condition=Q(processed_at__isnull=False), name="inbox_processed_idx"),
            # Partial: the PagerDuty hot path inserts NULLs and must not pay for these indexes.
            models.Index(fields=["incident"], condition=Q(incident__isnull=False), name="inbox_incident_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["request_id"], condition=Q(request_id__isnull=False), name="inbox_request_id_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.action} {self.dedup_key} ({'done' if self.processed_at else 'pending'})"
