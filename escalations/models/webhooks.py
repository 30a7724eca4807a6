"""Outgoing webhooks: a team's subscriptions, the events written for them, and one delivery row per
(subscription, event) — the durable outbox. Rows are the truth: a sweep sends whatever is due."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class WebhookSubscription(models.Model):
    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="webhook_subscriptions")
    url = models.URLField(max_length=2000)
    # Event types (escalations.webhooks.events.EVENT_TYPES); a JSON list, so the SQLite demo runs too.
    events = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    # The signing key must be usable to sign, so it cannot be hashed: it is shown once (create, rotate),
    # never listed, audited or logged. After a rotation the previous key also signs until
    # `previous_secret_until`, so receivers can switch over without dropping a delivery.
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} of {self.team_id}: {self.url[:80]}"


class WebhookEvent(models.Model):
    """One event as receivers see it. `payload` is the JSON body, frozen when the change committed;
    `public_id` is the `webhook-id` receivers deduplicate by, the same on every retry and resend."""

    public_id = models.CharField(max_length=40, unique=True)
    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40)
    incident = models.ForeignKey(
        "escalations.Incident", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # One event per timeline row, however often a caller records it.
    timeline_event = models.OneToOneField(
        "escalations.TimelineEvent", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # due at next_attempt_at (first try or a retry)
        SENDING = "sending", "Sending"  # claimed by a worker; the POST is under way
        DELIVERED = "delivered", "Delivered"  # the receiver answered 2xx
        FAILED = "failed", "Failed"  # no 2xx within the retry window; "send again" starts over

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Retries stop here (a day after the event, or after "send again").
    retry_until = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="one_webhook_delivery_per_event"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sending", "delivered", "failed"]),
                name="webhook_delivery_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due_idx"),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="webhook_delivery_sending_idx"),
            models.Index(fields=["subscription", "-created_at"], name="webhook_delivery_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to subscription {self.subscription_id} ({self.status})"
