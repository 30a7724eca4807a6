"""Emergency-line tasks (names frozen: workers and queued messages refer to them)."""

from celery import shared_task

from escalations.phone import publish
from escalations.phone import services as phone


@shared_task(name=publish.SMS_CONFIRMATION_SEND, acks_late=True, ignore_result=True)
def phone_sms_confirmation_send(call_id: int) -> str:
    return phone.call_sms_confirmation_send(call_id=call_id)
