"""Incidents, their append-only timeline, and one Page row per intended notification."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Incident(models.Model):
    class Status(models.TextChoices):
        TRIGGERED = "triggered", "Triggered"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    class Severity(models.TextChoices):
        CRITICAL = "critical", "Critical"
        ERROR = "error", "Error"
        WARNING = "warning", "Warning"
        INFO = "info", "Info"

    class Urgency(models.TextChoices):
        HIGH = "high", "High"
        LOW = "low", "Low"

    class Source(models.TextChoices):
        ALERT = "alert", "Monitoring alert"
        API = "api", "API"
        PHONE = "phone", "Emergency line"
        MANUAL = "manual", "Manual"
        HEARTBEAT = "heartbeat", "Missed heartbeat"

    team = models.ForeignKey("rotations.Team", on_delete=models.PROTECT, related_name="incidents")
    policy = models.ForeignKey(
        "escalations.EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    # The policy as it was when the incident opened (engine.PolicySpec.to_json()): edits to the
    # policy never disturb an escalation in flight.
    policy_snapshot = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=1024)
    details = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    urgency = models.CharField(max_length=4, choices=Urgency.choices, default=Urgency.HIGH)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    dedup_key = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The alert as it arrived, for the portal")
    links = models.JSONField(default=list, blank=True)
    alert_count = models.PositiveIntegerField(default=1)
    # Recorded during a maintenance window: shown, but pages nobody.
    suppressed = models.BooleanField(default=False)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.TRIGGERED)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignees = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="assigned_incidents")

    # Durable engine state (see escalations.engine.EngineState). The sweep picks up rows whose
    # next_action_at has passed; nothing about an escalation lives only in a Celery message.
    cycle = models.PositiveIntegerField(default=0)
    step = models.IntegerField(default=-1)
    loop = models.PositiveIntegerField(default=0)
    next_action_at = models.DateTimeField(null=True, blank=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    deferred_until = models.DateTimeField(null=True, blank=True)
    exhausted = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "dedup_key"],
                condition=~Q(status="resolved") & ~Q(dedup_key=""),
                name="one_open_incident_per_dedup_key",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["triggered", "acknowledged", "resolved"]), name="incident_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["next_action_at"], condition=~Q(status="resolved"), name="incident_due_idx"),
            models.Index(fields=["team", "status", "-created_at"], name="incident_team_status_idx"),
            models.Index(fields=["status", "-created_at"], name="incident_status_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED


class TimelineEvent(models.Model):
    """Append-only: every engine decision and human action on an incident."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        ALERT = "alert", "Alert received"
        STEP_REACHED = "step_reached", "Escalation step reached"
        STEP_SKIPPED = "step_skipped", "Escalation step skipped"
        EXHAUSTED = "exhausted", "Escalation policy exhausted"
        PAGED = "paged", "Page sent"
        PAGE_STATUS = "page_status", "Delivery status"
        PAGE_FAILED = "page_failed", "Page failed"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        ESCALATED = "escalated", "Escalated manually"
        POLICY_CHANGED = "policy_changed", "Moved to another escalation policy"
        REASSIGNED = "reassigned", "Reassigned"
        NOTE = "note", "Note"
        SNOOZED = "snoozed", "Snoozed"
        RESOLVED = "resolved", "Resolved"
        RETRIGGERED = "retriggered", "Re-triggered"
        HANDOVER = "handover", "Handed over"
        DEFERRED = "deferred", "Waiting for support hours"
        URGENCY_RAISED = "urgency_raised", "Urgency raised"
        CALL = "call", "Emergency call"

    class Via(models.TextChoices):
        WEB = "web", "Portal"
        API = "api", "API"
        SMS = "sms", "SMS reply"
        VOICE = "voice", "Phone keypress"
        EMAIL = "email", "E-mail"
        INTEGRATION = "integration", "Integration"
        SLACK = "slack", "Slack"
        SYSTEM = "system", "Backstop"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    via = models.CharField(max_length=12, choices=Via.choices, default=Via.SYSTEM)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["incident", "at"], name="timeline_incident_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.kind}: {self.message[:60]}"


class Page(models.Model):
    """One intended notification. The unique constraint makes a double page impossible."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        VOICE = "voice", "Voice call"
        EMAIL = "email", "E-mail"
        SLACK = "slack", "Slack"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for due_at
        SENDING = "sending", "Sending"  # claimed by a worker; provider being called
        SENT = "sent", "Sent"  # provider accepted it
        DELIVERED = "delivered", "Delivered"
        ANSWERED = "answered", "Answered"
        FAILED = "failed", "Failed"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        CANCELED = "canceled", "Canceled"  # incident acknowledged/resolved before it was due
        BUNDLED = "bundled", "Bundled"  # carried by another page's message (throttling)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="pages")
    cycle = models.PositiveIntegerField()
    step = models.PositiveIntegerField()
    loop = models.PositiveIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pages")
    rule_index = models.PositiveSmallIntegerField()
    # The person's rule this page carries out (none for the every-method fallback and hand-made rows).
    # No database constraint and no cascade: a deleted rule must leave its id behind, so that a page
    # still pending for it is recognised and canceled, never sent.
    rule = models.ForeignKey(
        "portal.NotificationRule",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    # When the step reached the person: rules added or edited later are timed from here.
    reached_at = models.DateTimeField(null=True, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    contact_method = models.ForeignKey(
        "portal.ContactMethod", null=True, blank=True, on_delete=models.SET_NULL, related_name="pages"
    )
    destination = models.CharField(max_length=254)
    due_at = models.DateTimeField()
    # The due time the page was written with, kept when delivery moves `due_at` later (a retry, a
    # throttle, a resend after reconciliation): lateness is measured from it. Null: never moved.
    first_due_at = models.DateTimeField(null=True, blank=True)
    # When a throttle first held the page back (too many messages to one destination): such a page is
    # late by design, and reported apart from pages late for any other reason.
    throttled_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=64, blank=True, db_index=True)
    error = models.TextField(blank=True)
    bundled_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="bundled_pages"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "cycle", "step", "loop", "user", "rule_index"], name="one_page_per_notification"
            ),
            # A rule added or edited mid-incident gets a row of its own: still at most one per step.
            models.UniqueConstraint(
                fields=["incident", "cycle", "step", "loop", "user", "rule"],
                condition=Q(rule__isnull=False),
                name="one_page_per_rule_and_step",
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(status__in=["pending", "sending"]), name="page_due_idx"),
            models.Index(fields=["contact_method", "sent_at"], name="page_contact_sent_idx"),
            models.Index(fields=["rule"], condition=Q(status="pending"), name="page_pending_rule_idx"),
            # Delivery works per destination: the pending pages to bundle and the recent claims to
            # throttle. Without these, both scanned every pending page or every page ever claimed.
            models.Index(
                fields=["destination", "channel"], condition=Q(status="pending"), name="page_pending_dest_idx"
            ),
            models.Index(
                fields=["destination", "channel", "claimed_at"],
                condition=Q(claimed_at__isnull=False),
                name="page_dest_claimed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.destination} for #{self.incident_id} ({self.status})"


class EmailActionUse(models.Model):
    """One use of a signed acknowledge/resolve link from a paging e-mail. The unique constraint makes the
    link single-use: a second click finds the row and is refused."""

    class Action(models.TextChoices):
        ACKNOWLEDGE = "acknowledge", "Acknowledge"
        RESOLVE = "resolve", "Resolve"

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="email_action_uses")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="email_action_uses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=12, choices=Action.choices)
    used_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page", "incident", "action"], name="email_action_once"),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.incident_id} via page {self.page_id}"
