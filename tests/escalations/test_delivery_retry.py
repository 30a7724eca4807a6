"""Fast retries and failover to the next contact method, against the fake Twilio API and real PostgreSQL."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from escalations.delivery.channels.twilio import TwilioSmsChannel
from escalations.delivery.deliver import page_deliver, pages_deliver
from escalations.delivery.reconcile import pages_reconcile_stuck
from escalations.delivery.retry import RETRY_MAX, failover_now, give_up, retry_delay
from escalations.models import Page, TimelineEvent
from portal.models import ContactMethod
from tests.factories import ContactMethodFactory, PageFactory

# --- the schedule (pure) -------------------------------------------------------------------------


@given(attempts=st.integers(min_value=1, max_value=30_000), rand=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_a_retry_comes_within_seconds_and_within_its_jitter_band(attempts, rand):
    delay = retry_delay(attempts, rand=lambda: rand)
    base = min(2 ** min(attempts - 1, 16), RETRY_MAX.total_seconds())
    assert 0.75 * base <= delay.total_seconds() <= 1.25 * base
    assert delay <= RETRY_MAX * 1.25  # never the minutes of a mail queue


@given(rand=st.floats(min_value=0, max_value=1, exclude_max=True), attempts=st.integers(min_value=1, max_value=40))
def test_later_attempts_never_wait_less_than_earlier_ones_for_the_same_draw(rand, attempts):
    assert retry_delay(attempts + 1, rand=lambda: rand) >= retry_delay(attempts, rand=lambda: rand)


def test_the_whole_retry_budget_is_about_a_minute(settings):
    # Every attempt but the last is followed by a wait; the worst draw everywhere.
    waits = [retry_delay(n, rand=lambda: 0.999999) for n in range(1, settings.BACKSTOP_PAGE_MAX_ATTEMPTS)]
    assert timedelta(seconds=45) <= sum(waits, timedelta()) <= timedelta(seconds=90)
    assert waits[:3] < [timedelta(seconds=1.25), timedelta(seconds=2.5), timedelta(seconds=5)]


def test_failover_happens_once_at_its_threshold_and_giving_up_at_the_last_attempt(settings):
    settings.BACKSTOP_PAGE_FAILOVER_AFTER = 2
    settings.BACKSTOP_PAGE_MAX_ATTEMPTS = 10
    assert [n for n in range(1, 20) if failover_now(n)] == [2]
    assert [n for n in range(1, 12) if give_up(n)] == [10, 11]


# --- failover ----------------------------------------------------------------------------------


def _person_with_sms_then_call(now):
    sms = PageFactory(due_at=now, rule_index=0)
    voice = ContactMethodFactory(user=sms.user, kind=ContactMethod.Kind.VOICE)
    call = PageFactory(incident=sms.incident, contact_method=voice, rule_index=1, due_at=now + timedelta(minutes=5))
    return sms, call


@pytest.mark.django_db
def test_a_channel_that_keeps_failing_pages_the_next_contact_method_in_parallel(fake_twilio):
    now = timezone.now()
    sms, call = _person_with_sms_then_call(now)
    fake_twilio.plan("500")
    first = page_deliver(page_id=sms.pk, now=now)
    assert first.result == "retry" and first.promoted_page_ids == []  # one error is not a bad day yet
    fake_twilio.plan("500")
    second = page_deliver(page_id=sms.pk, now=first.retry_at)
    assert second.result == "retry" and second.promoted_page_ids == [call.pk]
    call.refresh_from_db()
    assert call.status == Page.Status.PENDING and call.due_at == first.retry_at
    assert call.first_due_at is None  # made earlier, not held back
    note = TimelineEvent.objects.get(incident=sms.incident, data__failover_page_id=call.pk)
    assert (
        note.message == f"SMS keeps failing: paging {sms.user.display_name} by phone ({call.destination}) now as well"
    )

    # The call goes out while the SMS keeps trying; each is sent once.
    assert page_deliver(page_id=call.pk, now=first.retry_at).result == "sent"
    assert page_deliver(page_id=sms.pk, now=second.retry_at).result == "sent"
    fake_twilio.plan("500")  # a later failure of nothing: both are settled
    assert [o.result for o in pages_deliver(page_ids=[sms.pk, call.pk], now=second.retry_at)] == ["skipped"] * 2
    assert len(fake_twilio.messages()) == 1 and len(fake_twilio.calls()) == 1
    assert TimelineEvent.objects.filter(incident=sms.incident, data__has_key="failover_page_id").count() == 1


@pytest.mark.django_db
def test_failover_skips_a_next_rule_to_the_same_destination(fake_twilio):
    now = timezone.now()
    sms = PageFactory(due_at=now, rule_index=0)
    again = PageFactory(
        incident=sms.incident, contact_method=sms.contact_method, rule_index=1, due_at=now + timedelta(minutes=5)
    )
    fake_twilio.plan("500", "500")
    first = page_deliver(page_id=sms.pk, now=now)
    assert page_deliver(page_id=sms.pk, now=first.retry_at).promoted_page_ids == []
    again.refresh_from_db()
    assert again.due_at == now + timedelta(minutes=5)


# --- exactly once under any sequence of provider answers ------------------------------------------

ANSWERS = st.lists(st.sampled_from(["ok", "500", "timeout", "timeout_lost"]), min_size=0, max_size=6)


@pytest.mark.django_db
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=ANSWERS, channel=st.sampled_from(["sms", "voice"]))
def test_whatever_the_provider_answers_a_page_reaches_it_exactly_once(fake_twilio, settings, answers, channel):
    """Drive one page through deliveries and reconciliation with the provider answering `answers` in
    turn (then "ok"). It must end sent with exactly one message at the provider, its id recorded, or
    failed with none, and never two. Waiting is simulated by moving the page's times back, so our clock
    and the provider's agree (calls are found by number and creation time)."""
    fake_twilio.reset()
    fake_twilio.plan(*answers)
    page = PageFactory(due_at=timezone.now(), contact_method=ContactMethodFactory(kind=channel))
    kind = "Messages" if channel == "sms" else "Calls"
    for _ in range(40):
        page.refresh_from_db()
        if page.status == Page.Status.PENDING:
            Page.objects.filter(pk=page.pk).update(due_at=timezone.now())  # the retry's wait has passed
            page_deliver(page_id=page.pk)
        elif page.status == Page.Status.SENDING:
            stuck = page.claimed_at - settings.BACKSTOP_PAGE_STUCK_AFTER - timedelta(seconds=1)
            Page.objects.filter(pk=page.pk).update(claimed_at=stuck)  # as long ago as the stuck window
            pages_reconcile_stuck()
        else:
            break
    created = fake_twilio.messages() if channel == "sms" else fake_twilio.calls()
    assert len(created) <= 1
    page.refresh_from_db()
    if page.status == Page.Status.SENT:
        assert len(created) == 1 and page.provider_id == created[0]["sid"]
    else:
        assert page.status == Page.Status.FAILED and created == []
    assert len(fake_twilio.create_requests(kind)) == page.attempts


# --- a slow provider does not hold the batch --------------------------------------------------------


def _wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_call_slower_than_the_batch_wait_is_settled_by_its_send_thread(fake_twilio, settings):
    settings.BACKSTOP_DELIVERY_SEND_WAIT = timedelta(milliseconds=100)
    now = timezone.now()
    page = PageFactory(due_at=now)
    # Twilio creates the message, then holds its answer past the 0.5 s client timeout: the batch
    # returns after its 100 ms wait, with the call still out.
    fake_twilio.plan("timeout")
    assert page_deliver(page_id=page.pk, now=now).result == "in_flight"
    # The send thread times out, asks Twilio, finds the message and records it: sent once.
    assert _wait_for(lambda: Page.objects.get(pk=page.pk).status == Page.Status.SENT)
    page.refresh_from_db()
    [msg] = fake_twilio.messages()
    assert page.provider_id == msg["sid"] and page.sent_at == now
    assert len(fake_twilio.create_requests()) == 1
    assert pages_reconcile_stuck(now=now + timedelta(minutes=5)) == 0


@pytest.mark.django_db(transaction=True)
def test_a_late_provider_error_is_retried_by_its_send_thread(fake_twilio, settings, monkeypatch):
    settings.BACKSTOP_DELIVERY_SEND_WAIT = timedelta(milliseconds=50)
    published = []
    monkeypatch.setattr("escalations.delivery.publish.page_enqueue", lambda ids, eta=None: published.append(ids))
    real_send = TwilioSmsChannel.send

    def slow_send(self, message):
        time.sleep(0.3)
        return real_send(self, message)

    monkeypatch.setattr(TwilioSmsChannel, "send", slow_send)
    now = timezone.now()
    page = PageFactory(due_at=now)
    fake_twilio.plan("500")
    assert page_deliver(page_id=page.pk, now=now).result == "in_flight"
    assert _wait_for(lambda: Page.objects.get(pk=page.pk).status == Page.Status.PENDING)
    page.refresh_from_db()
    assert page.attempts == 1 and page.first_due_at == now and page.due_at > now
    assert _wait_for(lambda: published == [[page.pk]])  # its retry is timed on the deliveries queue
