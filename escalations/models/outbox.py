"""Messages the console channel would have sent: the outbox when Twilio is not configured.

Each row names the person it was sent to (`recipient`) and, for a verification code, the contact method
it verifies (`verifies`). The outbox shows a row only to that person: a phone number alone proves
nothing here, since anyone may add any number as an unverified method.
"""

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
    # Empty for messages to people outside Backstop (a caller's SMS confirmation).
    recipient = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_messages"
    )
    verifies = models.ForeignKey(
        "portal.ContactMethod", null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_messages"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to}: {self.body[:40]}"
