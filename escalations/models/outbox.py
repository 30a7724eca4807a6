"""Messages the console channel would have sent: the demo's outbox when Twilio is not configured."""

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        VOICE = "voice", "Voice call"
        EMAIL = "email", "E-mail"

    class Kind(models.TextChoices):
        PAGE = "page", "Page"
        REPLY = "reply", "Reply"
        NOTICE = "notice", "Notice"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    page = models.ForeignKey(
        "escalations.Page", null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    incident = models.ForeignKey(
        "escalations.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PAGE)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to}: {self.body[:40]}"
