"""Console/outbox channel: used for SMS and voice when Twilio is not configured (the demo)."""

from __future__ import annotations

from datetime import datetime

from escalations.delivery.channels.base import OutgoingMessage, SendResult
from escalations.models import OutboxMessage


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
        )
        return SendResult(provider_id=f"OUTBOX{row.pk}", status="sent")

    def find_sent(self, message: OutgoingMessage, *, since: datetime, exclude_ids: set[str]) -> str | None:
        if not message.page_id:
            return None
        for pk in OutboxMessage.objects.filter(page_id=message.page_id, channel=message.channel).values_list(
            "pk", flat=True
        ):
            if f"OUTBOX{pk}" not in exclude_ids:
                return f"OUTBOX{pk}"
        return None
