"""Publishing emergency-line work by task name (services never import task modules; see
docs/architecture.md)."""

from __future__ import annotations

from celery import current_app

# Task names are frozen: workers, queued messages and CELERY_TASK_ROUTES refer to them.
SMS_CONFIRMATION_SEND = "escalations.tasks.phone_sms_confirmation_send"


def sms_confirmation_enqueue(call_id: int) -> None:
    """Text the caller their reference, from a worker (the call's webhook must answer Twilio at once)."""
    current_app.tasks[SMS_CONFIRMATION_SEND].delay(call_id)
