"""Delivery driven by a real Celery worker over Redis, against the fake Twilio API."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from escalations.delivery import publish
from escalations.delivery import tasks as delivery_tasks
from escalations.delivery.channels.twilio import TwilioSmsChannel
from escalations.models import Page
from portal.models import JobRun
from tests.factories import ContactMethodFactory, PageFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(celery_worker):
    return celery_worker


def _wait_for(predicate, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _settled():
    return not Page.objects.filter(status__in=[Page.Status.PENDING, Page.Status.SENDING]).exists()


def test_enqueued_pages_reach_twilio_exactly_once_even_when_enqueued_repeatedly(worker, fake_twilio):
    pages = [PageFactory(contact_method=ContactMethodFactory()) for _ in range(4)]
    ids = [p.pk for p in pages]
    for _ in range(3):  # the engine's enqueue, a redelivery, the sweep: all at once
        publish.page_enqueue(ids)
    delivery_tasks.page_reconcile.delay()
    assert _wait_for(_settled)
    time.sleep(0.5)
    assert sorted(m["to"] for m in fake_twilio.messages()) == sorted(p.destination for p in pages)
    assert len(fake_twilio.create_requests()) == 4
    assert set(Page.objects.values_list("status", flat=True)) == {Page.Status.SENT}


def test_temporary_twilio_errors_are_retried_by_the_worker_within_seconds(worker, fake_twilio):
    page = PageFactory()
    fake_twilio.plan("500", "500")
    publish.page_enqueue([page.pk])
    assert _wait_for(lambda: Page.objects.get(pk=page.pk).status == Page.Status.SENT)
    assert len(fake_twilio.messages()) == 1
    assert len(fake_twilio.create_requests()) == 3


def test_worker_dying_between_claim_and_send_is_reconciled_to_exactly_one_message(worker, fake_twilio, monkeypatch):
    """The task is claimed, then the worker 'dies' (the channel raises BaseException-like death
    before or after Twilio got the request); reconcile decides, the resend happens at most once."""
    sent_before_death = PageFactory(contact_method=ContactMethodFactory())
    died_before_send = PageFactory(contact_method=ContactMethodFactory())
    real_send = TwilioSmsChannel.send

    class WorkerKilled(Exception):
        pass

    deaths = []

    def dying_send(self, message):
        deaths.append(message.page_id)
        if message.page_id == sent_before_death.pk:
            real_send(self, message)  # Twilio has it; the worker dies before recording it
        raise WorkerKilled("SIGKILL")

    monkeypatch.setattr(TwilioSmsChannel, "send", dying_send)
    publish.page_enqueue([sent_before_death.pk, died_before_send.pk])
    assert _wait_for(lambda: Page.objects.filter(status=Page.Status.SENDING).count() == 2)
    # The claim commits before the channel is called: wait until both workers have "died".
    assert _wait_for(lambda: len(deaths) == 2)
    monkeypatch.setattr(TwilioSmsChannel, "send", real_send)  # the replacement worker is healthy

    # A redelivered message finds the page claimed and does nothing.
    publish.page_enqueue([sent_before_death.pk, died_before_send.pk])
    time.sleep(0.5)
    assert len(fake_twilio.create_requests()) == 1

    # Two minutes pass (longer than BACKSTOP_PAGE_STUCK_AFTER); the beat's reconcile job runs.
    Page.objects.filter(status=Page.Status.SENDING).update(claimed_at=timezone.now() - timedelta(minutes=2))
    delivery_tasks.page_reconcile.delay()
    assert _wait_for(_settled)
    time.sleep(0.3)
    assert sorted(m["to"] for m in fake_twilio.messages()) == sorted(
        [sent_before_death.destination, died_before_send.destination]
    )
    assert len(fake_twilio.create_requests()) == 2
    assert set(Page.objects.values_list("status", flat=True)) == {Page.Status.SENT}
    assert JobRun.objects.get(name="page-reconcile").last_success_at is not None
