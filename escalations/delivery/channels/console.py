"""Console/outbox channel: used for SMS and voice when Twilio is not configured (the demo)."""

from __future__ import annotations

from datetime import datetime

from escalations.delivery.channels.base import OutgoingMessage, SendResult
from escalations.models import OutboxMessage

# Provider ids of messages the outbox took instead of a provider.
OUTBOX_PREFIX = "OUTBOX"


class ConsoleChannel:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def send(self, message: OutgoingMessage) -> SendResult:
        row = OutboxMessage.objects.create(
            channel=message.channel,
            to=message.to,
            subject=message.subject[:255],
            body=message.body,
            page_id=message.page_id,
            incident_id=message.incident_id,
            kind=message.kind,
            recipient_id=message.user_id,
            verifies_id=message.contact_method_id,
        )
        return SendResult(provider_id=f"{OUTBOX_PREFIX}{row.pk}", status="sent")

    def find_sent(self, message: OutgoingMessage, *, since: datetime, exclude_ids: set[str]) -> str | None:
        if not message.page_id:
            return None
        for pk in OutboxMessage.objects.filter(page_id=message.page_id, channel=message.channel).values_list(
            "pk", flat=True
        ):
            if f"{OUTBOX_PREFIX}{pk}" not in exclude_ids:
                return f"{OUTBOX_PREFIX}{pk}"
        return None
