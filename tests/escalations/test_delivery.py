"""Page delivery against the fake Twilio API, with the real twilio SDK and real PostgreSQL."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from escalations.delivery.channels import page_reference_ids
from escalations.delivery.deliver import page_deliver, pages_deliver
from escalations.delivery.reconcile import pages_dispatch_due, pages_reconcile_stuck
from escalations.delivery.status import page_status_update
from escalations.models import Incident, OutboxMessage, Page, TimelineEvent
from portal.models import ContactMethod
from tests.factories import ContactMethodFactory, IncidentFactory, PageFactory, TeamFactory

pytestmark = pytest.mark.django_db


def _page(**kw) -> Page:
    return PageFactory(**kw)


def test_due_page_is_sent_once_with_actionable_text(fake_twilio):
    team = TeamFactory(name="Payments")
    page = _page(incident=IncidentFactory(team=team, title="DB down"))
    outcome = page_deliver(page_id=page.pk)

    assert outcome.result == "sent"
    [msg] = fake_twilio.messages()
    n = page.incident_id
    assert msg["to"] == page.destination
    assert msg["body"].startswith(f"Backstop #{n} [Payments] DB down.")
    assert f"{n}A ack, {n}R resolve, {n}E escalate" in msg["body"]
    assert page_reference_ids(msg["body"]) == {page.pk}
    assert msg["_form"]["StatusCallback"] == f"https://backstop.example.com/twilio/status/{page.pk}/"
    page.refresh_from_db()
    assert page.status == Page.Status.SENT
    assert page.provider_id == msg["sid"] == outcome.provider_id
    assert page.attempts == 1
    event = TimelineEvent.objects.get(incident=page.incident, kind=TimelineEvent.Kind.PAGED)
    assert event.message == f"Paged {page.user.display_name} by SMS ({page.destination})"


def test_delivering_the_same_page_twice_sends_one_message(fake_twilio):
    page = _page()
    assert page_deliver(page_id=page.pk).result == "sent"
    assert page_deliver(page_id=page.pk).result == "skipped"
    assert len(fake_twilio.create_requests()) == 1


def test_page_not_yet_due_is_left_alone(fake_twilio):
    now = timezone.now()
    page = _page(due_at=now + timedelta(minutes=2))
    assert page_deliver(page_id=page.pk, now=now).result == "skipped"
    assert fake_twilio.requests == []
    assert pages_dispatch_due(now=now) == []
    assert pages_dispatch_due(now=now + timedelta(minutes=3)) == [page.pk]


@pytest.mark.parametrize(
    "incident_kw",
    [{"status": Incident.Status.ACKNOWLEDGED}, {"status": Incident.Status.RESOLVED}, {"suppressed": True}],
)
def test_pages_of_acknowledged_resolved_or_suppressed_incidents_are_canceled(fake_twilio, incident_kw):
    page = _page(incident=IncidentFactory(**incident_kw))
    assert page_deliver(page_id=page.pk).result == "canceled"
    page.refresh_from_db()
    assert page.status == Page.Status.CANCELED
    assert fake_twilio.requests == []


def test_temporary_failure_is_retried_within_seconds_then_sent_once(fake_twilio):
    now = timezone.now()
    page = _page(due_at=now)
    fake_twilio.plan("500")
    outcome = page_deliver(page_id=page.pk, now=now)
    assert outcome.result == "retry"
    page.refresh_from_db()
    assert page.status == Page.Status.PENDING
    # About a second (+/-25 % jitter), not 15 s: the person is waiting for this page.
    assert page.due_at == outcome.retry_at
    assert now + timedelta(seconds=0.75) <= page.due_at <= now + timedelta(seconds=1.25)
    assert page.first_due_at == now  # lateness still counts from the first due time
    assert "500" in page.error
    failed = TimelineEvent.objects.get(incident=page.incident, kind=TimelineEvent.Kind.PAGE_FAILED)
    assert failed.data["attempt"] == 1 and "(attempt 1), trying again in 1 s" in failed.message

    assert page_deliver(page_id=page.pk, now=now + timedelta(milliseconds=500)).result == "skipped"
    fake_twilio.plan("500")
    second = page_deliver(page_id=page.pk, now=page.due_at)
    assert second.result == "retry"
    assert page.due_at + timedelta(seconds=1.5) <= second.retry_at <= page.due_at + timedelta(seconds=2.5)

    assert page_deliver(page_id=page.pk, now=second.retry_at).result == "sent"
    page.refresh_from_db()
    assert page.status == Page.Status.SENT and page.attempts == 3 and page.first_due_at == now
    assert len(fake_twilio.create_requests()) == 3
    assert len(fake_twilio.messages()) == 1
    paged = TimelineEvent.objects.get(incident=page.incident, kind=TimelineEvent.Kind.PAGED)
    assert paged.message.endswith(", attempt 3") and paged.data["attempt"] == 3


def test_temporary_failures_give_up_after_max_attempts_and_move_to_next_rule(fake_twilio, settings):
    settings.BACKSTOP_PAGE_MAX_ATTEMPTS = 2
    now = timezone.now()
    page = _page(due_at=now, rule_index=0)
    voice = ContactMethodFactory(user=page.user, kind=ContactMethod.Kind.VOICE)
    later = _page(incident=page.incident, contact_method=voice, rule_index=1, due_at=now + timedelta(minutes=5))
    fake_twilio.plan("500", "500")
    assert page_deliver(page_id=page.pk, now=now).result == "retry"
    outcome = page_deliver(page_id=page.pk, now=now + timedelta(seconds=15))
    assert outcome.result == "failed"
    assert outcome.promoted_page_ids == [later.pk]
    page.refresh_from_db()
    later.refresh_from_db()
    assert page.status == Page.Status.FAILED
    assert later.status == Page.Status.PENDING and later.due_at == now + timedelta(seconds=15)
    assert fake_twilio.messages() == []


def test_permanent_failure_fails_at_once(fake_twilio):
    page = _page()
    fake_twilio.plan("400")
    outcome = page_deliver(page_id=page.pk)
    assert outcome.result == "failed"
    page.refresh_from_db()
    assert page.status == Page.Status.FAILED and "21211" in page.error
    assert len(fake_twilio.create_requests()) == 1


def test_timeout_after_twilio_created_the_message_is_found_at_once_without_resending(fake_twilio):
    now = timezone.now()
    page = _page(due_at=now)
    fake_twilio.plan("timeout")
    outcome = page_deliver(page_id=page.pk, now=now)
    # No answer in time, but asking Twilio right away finds the message: sent, never resent.
    assert outcome.result == "sent"
    page.refresh_from_db()
    [msg] = fake_twilio.messages()
    assert page.status == Page.Status.SENT and page.provider_id == msg["sid"] == outcome.provider_id
    assert page.sent_at == now
    assert TimelineEvent.objects.filter(
        incident=page.incident, kind=TimelineEvent.Kind.PAGE_STATUS, message__contains="but it has the message"
    ).exists()
    assert page_deliver(page_id=page.pk, now=now + timedelta(seconds=62)).result == "skipped"
    assert pages_reconcile_stuck(now=now + timedelta(seconds=120)) == 0
    assert len(fake_twilio.create_requests()) == 1


def test_timeout_where_twilio_created_nothing_is_resent_once_after_the_stuck_window(fake_twilio):
    now = timezone.now()
    page = _page(due_at=now, rule_index=0)
    voice = ContactMethodFactory(user=page.user, kind=ContactMethod.Kind.VOICE)
    call = _page(incident=page.incident, contact_method=voice, rule_index=1, due_at=now + timedelta(minutes=5))
    fake_twilio.plan("timeout_lost")
    outcome = page_deliver(page_id=page.pk, now=now)
    # Twilio does not show the message: it may still be on its way there, so no resend yet, but the
    # person's next contact method is paged now.
    assert outcome.result == "unknown" and outcome.promoted_page_ids == [call.pk]
    page.refresh_from_db()
    call.refresh_from_db()
    assert page.status == Page.Status.SENDING and call.due_at == now
    assert pages_reconcile_stuck(now=now + timedelta(seconds=30)) == 0  # not stuck yet
    later = now + timedelta(seconds=61)
    assert pages_reconcile_stuck(now=later) == 1
    page.refresh_from_db()
    assert page.status == Page.Status.PENDING and page.first_due_at == now
    assert sorted(pages_dispatch_due(now=later)) == [page.pk, call.pk]
    assert page_deliver(page_id=page.pk, now=later).result == "sent"
    assert page_deliver(page_id=page.pk, now=later).result == "skipped"
    assert len(fake_twilio.messages()) == 1
    page.refresh_from_db()
    assert page.attempts == 2


def test_a_call_without_an_answer_is_found_by_number_and_time(fake_twilio):
    now = timezone.now()
    voice = ContactMethodFactory(kind=ContactMethod.Kind.VOICE)
    page = _page(contact_method=voice, due_at=now)
    fake_twilio.plan("timeout")
    assert page_deliver(page_id=page.pk, now=now).result == "sent"
    page.refresh_from_db()
    [call] = fake_twilio.calls()
    assert page.status == Page.Status.SENT and page.provider_id == call["sid"]
    assert pages_reconcile_stuck(now=now + timedelta(seconds=61)) == 0
    assert len(fake_twilio.create_requests("Calls")) == 1


def test_reconcile_of_a_page_stuck_after_twilio_created_it_sends_nothing_more(fake_twilio):
    """The worker died after Twilio accepted the message and before it was recorded."""
    now = timezone.now()
    page = _page(due_at=now - timedelta(seconds=5))
    assert page_deliver(page_id=page.pk, now=now).result == "sent"
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SENDING, provider_id="", sent_at=None, claimed_at=now)
    assert pages_reconcile_stuck(now=now + timedelta(seconds=61)) == 1
    page.refresh_from_db()
    [msg] = fake_twilio.messages()
    # Stamped with the attempt that got it out, not with the moment reconciliation noticed.
    assert page.status == Page.Status.SENT and page.provider_id == msg["sid"] and page.sent_at == now
    assert len(fake_twilio.create_requests()) == 1


def test_five_pages_to_one_phone_go_out_as_one_bundled_sms(fake_twilio):
    team = TeamFactory(name="Payments")
    cm = ContactMethodFactory()
    pages = [_page(incident=IncidentFactory(team=team, title=f"Problem {i}"), contact_method=cm) for i in range(5)]
    outcome = page_deliver(page_id=pages[2].pk)
    assert outcome.result == "sent"
    [msg] = fake_twilio.messages()
    assert msg["body"].startswith("5 incidents open for Payments: ")
    for p in pages:
        assert f"#{p.incident_id} Problem" in msg["body"]
    for p in pages:
        p.refresh_from_db()
        if p.pk == pages[2].pk:
            assert p.status == Page.Status.SENT
        else:
            assert p.status == Page.Status.BUNDLED and p.bundled_into_id == pages[2].pk
        assert page_deliver(page_id=p.pk).result == "skipped"
    assert len(fake_twilio.create_requests()) == 1
    assert TimelineEvent.objects.filter(kind=TimelineEvent.Kind.PAGED).count() == 5


def test_throttled_pages_wait_for_the_window_and_are_bundled_never_dropped(fake_twilio, settings):
    settings.BACKSTOP_PAGE_THROTTLE = {**settings.BACKSTOP_PAGE_THROTTLE, "sms": {"count": 2, "seconds": 60}}
    t0 = timezone.now()
    cm = ContactMethodFactory()
    a = _page(contact_method=cm, due_at=t0)
    assert page_deliver(page_id=a.pk, now=t0).result == "sent"
    b = _page(contact_method=cm, due_at=t0 + timedelta(seconds=1))
    assert page_deliver(page_id=b.pk, now=t0 + timedelta(seconds=1)).result == "sent"
    c = _page(contact_method=cm, due_at=t0 + timedelta(seconds=2))
    outcome = page_deliver(page_id=c.pk, now=t0 + timedelta(seconds=2))
    assert outcome.result == "throttled" and outcome.retry_at == t0 + timedelta(seconds=60)
    d = _page(contact_method=cm, due_at=t0 + timedelta(seconds=3))
    assert page_deliver(page_id=d.pk, now=t0 + timedelta(seconds=3)).result == "throttled"
    assert len(fake_twilio.messages()) == 2

    due = pages_dispatch_due(now=t0 + timedelta(seconds=60))
    assert set(due) == {c.pk, d.pk}
    assert page_deliver(page_id=c.pk, now=t0 + timedelta(seconds=60)).result == "sent"
    msgs = fake_twilio.messages()
    assert len(msgs) == 3
    assert f"#{c.incident_id}" in msgs[-1]["body"] and f"#{d.incident_id}" in msgs[-1]["body"]
    d.refresh_from_db()
    assert d.status == Page.Status.BUNDLED and d.bundled_into_id == c.pk


def test_bundled_pages_are_released_when_the_carrier_must_retry(fake_twilio):
    now = timezone.now()
    cm = ContactMethodFactory()
    a, b = _page(contact_method=cm, due_at=now), _page(contact_method=cm, due_at=now)
    fake_twilio.plan("500")
    outcome = page_deliver(page_id=a.pk, now=now)
    assert outcome.result == "retry" and outcome.bundled_page_ids == [b.pk]
    b.refresh_from_db()
    assert b.status == Page.Status.PENDING and b.bundled_into_id is None and b.due_at == outcome.retry_at
    assert page_deliver(page_id=b.pk, now=outcome.retry_at).result == "sent"
    a.refresh_from_db()
    assert a.status == Page.Status.BUNDLED
    assert len(fake_twilio.messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_page_send_exactly_one_message(fake_twilio):
    page = _page()
    barrier = threading.Barrier(4)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(page_deliver(page_id=page.pk).result)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["sent", "skipped", "skipped", "skipped"]
    assert len(fake_twilio.create_requests()) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_many_pages_to_one_phone_never_double(fake_twilio):
    cm = ContactMethodFactory()
    pages = [_page(contact_method=cm) for _ in range(6)]
    barrier = threading.Barrier(len(pages))

    def run(pk):
        try:
            barrier.wait()
            page_deliver(page_id=pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(p.pk,)) for p in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    carried = [set(page_reference_ids(m["body"])) for m in fake_twilio.messages()]
    statuses = dict(Page.objects.values_list("pk", "status"))
    assert all(s in (Page.Status.SENT, Page.Status.BUNDLED) for s in statuses.values())
    sent = {pk for pk, s in statuses.items() if s == Page.Status.SENT}
    assert set().union(*carried) == sent
    assert len(carried) == len(sent)


# --- batches (a wake-up message carries the pages due in one bucket) -----------------------------


def test_a_batch_sends_every_due_page_once_with_a_handful_of_statements(fake_twilio, django_assert_max_num_queries):
    pages = [_page() for _ in range(10)]
    with django_assert_max_num_queries(14):  # claimed, loaded and recorded together: not ~12 per page
        outcomes = pages_deliver(page_ids=[p.pk for p in pages])
    assert [o.result for o in outcomes] == ["sent"] * 10
    # Sent from several threads at once: each page keeps its own message's id, never another's.
    sid_by_to = {m["to"]: m["sid"] for m in fake_twilio.messages()}
    assert len(sid_by_to) == 10
    for page, outcome in zip(pages, outcomes, strict=True):
        page.refresh_from_db()
        assert page.status == Page.Status.SENT and page.attempts == 1 and page.sent_at is not None
        assert page.provider_id == outcome.provider_id == sid_by_to[page.destination]
        [msg] = fake_twilio.messages(to=page.destination)
        assert page_reference_ids(msg["body"]) == {page.pk}
    assert TimelineEvent.objects.filter(kind=TimelineEvent.Kind.PAGED).count() == 10


def test_a_batchs_twilio_calls_go_out_together(fake_twilio, monkeypatch):
    """Three sends that can only finish if all three are in flight at once (a barrier)."""
    from escalations.delivery.channels.twilio import TwilioSmsChannel

    barrier = threading.Barrier(3, timeout=5)
    real_send = TwilioSmsChannel.send

    def send_together(self, message):
        barrier.wait()
        return real_send(self, message)

    monkeypatch.setattr(TwilioSmsChannel, "send", send_together)
    pages = [_page() for _ in range(3)]
    assert [o.result for o in pages_deliver(page_ids=[p.pk for p in pages])] == ["sent"] * 3
    assert len(fake_twilio.messages()) == 3


def test_pages_of_one_batch_to_one_phone_go_out_as_one_message(fake_twilio):
    cm = ContactMethodFactory()
    same = [_page(contact_method=cm) for _ in range(3)]
    other = _page()
    outcomes = pages_deliver(page_ids=[same[1].pk, other.pk, same[0].pk, same[2].pk])
    assert [o.result for o in outcomes] == ["sent", "sent", "bundled", "bundled"]
    assert sorted(outcomes[0].bundled_page_ids) == sorted([same[0].pk, same[2].pk])
    [msg] = fake_twilio.messages(to=cm.value)
    assert page_reference_ids(msg["body"]) == {same[1].pk}
    for p in same:
        assert f"#{p.incident_id} " in msg["body"]
    statuses = dict(Page.objects.values_list("pk", "status"))
    assert statuses[same[1].pk] == statuses[other.pk] == Page.Status.SENT
    assert statuses[same[0].pk] == statuses[same[2].pk] == Page.Status.BUNDLED
    assert len(fake_twilio.create_requests()) == 2


def test_a_batch_sorts_out_canceled_early_throttled_and_missing_pages(fake_twilio, settings):
    settings.BACKSTOP_PAGE_THROTTLE = {**settings.BACKSTOP_PAGE_THROTTLE, "sms": {"count": 1, "seconds": 60}}
    now = timezone.now()
    busy = ContactMethodFactory()
    earlier = _page(contact_method=busy, due_at=now - timedelta(seconds=10))
    assert page_deliver(page_id=earlier.pk, now=now - timedelta(seconds=10)).result == "sent"
    throttled = _page(contact_method=busy, due_at=now)
    canceled = _page(incident=IncidentFactory(status=Incident.Status.ACKNOWLEDGED), due_at=now)
    early = _page(due_at=now + timedelta(minutes=1))
    fine = _page(due_at=now)
    outcomes = pages_deliver(page_ids=[throttled.pk, canceled.pk, early.pk, fine.pk, 10**9, fine.pk], now=now)
    assert [o.result for o in outcomes] == ["throttled", "canceled", "skipped", "sent", "skipped"]
    assert outcomes[0].retry_at == now + timedelta(seconds=50)
    throttled.refresh_from_db()
    canceled.refresh_from_db()
    assert throttled.status == Page.Status.PENDING and throttled.due_at == now + timedelta(seconds=50)
    assert canceled.status == Page.Status.CANCELED
    assert [m["to"] for m in fake_twilio.messages()] == [busy.value, fine.destination]


def test_one_failing_send_in_a_batch_leaves_the_others_sent(fake_twilio):
    pages = [_page() for _ in range(2)]
    fake_twilio.plan("500")  # whichever call arrives first
    outcomes = pages_deliver(page_ids=[p.pk for p in pages])
    assert sorted(o.result for o in outcomes) == ["retry", "sent"]
    retried = next(o for o in outcomes if o.result == "retry")
    page = Page.objects.get(pk=retried.page_id)
    assert page.status == Page.Status.PENDING and page.due_at == retried.retry_at
    assert len(fake_twilio.messages()) == 1


def test_a_claim_that_loses_a_deadlock_is_tried_again(fake_twilio, monkeypatch):
    import psycopg.errors
    from django.db import OperationalError

    from escalations.delivery import claim as delivery_claim

    real_claim = delivery_claim._pages_claim
    calls = []

    def deadlocked_once(*args):
        calls.append(args)
        if len(calls) == 1:
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.errors.DeadlockDetected as cause:
                raise OperationalError("deadlock detected") from cause
        return real_claim(*args)

    monkeypatch.setattr(delivery_claim, "_pages_claim", deadlocked_once)
    page = _page()
    assert page_deliver(page_id=page.pk).result == "sent"
    assert len(calls) == 2 and len(fake_twilio.messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_overlapping_batches_at_once_claim_every_page_exactly_once(fake_twilio):
    """Four workers get the same twelve pages to four phones (a message, its redelivery, the reconcile
    job's re-enqueue...), each in another order, at the same moment: every page goes out in exactly one
    message."""
    import random

    phones = [ContactMethodFactory() for _ in range(4)]
    pages = [_page(contact_method=phones[i % 4]) for i in range(12)]
    ids = [p.pk for p in pages]
    batches = [random.Random(seed).sample(ids, len(ids)) for seed in range(4)]
    barrier = threading.Barrier(len(batches))
    errors = []

    def run(batch):
        try:
            barrier.wait()
            pages_deliver(page_ids=batch)
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    statuses = dict(Page.objects.filter(pk__in=ids).values_list("pk", "status"))
    carriers = {pk for pk, s in statuses.items() if s == Page.Status.SENT}
    assert set(statuses.values()) <= {Page.Status.SENT, Page.Status.BUNDLED}
    messages = fake_twilio.messages()
    assert len(messages) == len(carriers) == len({m["body"] for m in messages})
    assert sorted(pk for m in messages for pk in page_reference_ids(m["body"])) == sorted(carriers)
    # Every page reached rides in exactly one message: its carrier's.
    bundled_into = dict(Page.objects.filter(pk__in=ids).values_list("pk", "bundled_into_id"))
    for pk in set(ids) - carriers:
        assert bundled_into[pk] in carriers
    assert len(fake_twilio.create_requests()) == len(carriers)


def test_each_thread_gets_its_own_twilio_client(fake_twilio):
    from escalations.delivery.channels.twilio import twilio_client

    mine = twilio_client()
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(twilio_client()))
    thread.start()
    thread.join()
    assert twilio_client() is mine and theirs[0] is not mine
    assert theirs[0].api.base_url == mine.api.base_url == fake_twilio.base_url


# --- status callbacks (service level) --------------------------------------------------------


def _sent_page(**kw) -> Page:
    page = _page(**kw)
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SENT, provider_id="SMabc", sent_at=timezone.now())
    page.refresh_from_db()
    return page


def test_sms_delivered_callback_is_applied_once():
    page = _sent_page()
    assert page_status_update(page_id=page.pk, provider_status="sent", provider_id="SMabc").changed is False
    assert page_status_update(page_id=page.pk, provider_status="delivered", provider_id="SMabc").changed
    assert not page_status_update(page_id=page.pk, provider_status="delivered", provider_id="SMabc").changed
    # A late "sent" never moves a delivered page back.
    assert not page_status_update(page_id=page.pk, provider_status="sent", provider_id="SMabc").changed
    page.refresh_from_db()
    assert page.status == Page.Status.DELIVERED
    assert TimelineEvent.objects.filter(incident=page.incident, kind=TimelineEvent.Kind.PAGE_STATUS).count() == 1


def test_callback_for_another_sid_is_ignored():
    page = _sent_page()
    assert not page_status_update(page_id=page.pk, provider_status="failed", provider_id="SMother").changed
    page.refresh_from_db()
    assert page.status == Page.Status.SENT


@pytest.mark.parametrize(
    ("status", "answered_by", "expected"),
    [
        ("no-answer", None, Page.Status.NO_ANSWER),
        ("busy", None, Page.Status.BUSY),
        ("failed", None, Page.Status.FAILED),
        ("completed", "machine_end_beep", Page.Status.NO_ANSWER),
        ("in-progress", "machine_start", Page.Status.NO_ANSWER),
    ],
)
def test_unanswered_call_moves_on_to_the_next_rule(status, answered_by, expected):
    now = timezone.now()
    voice = ContactMethodFactory(kind=ContactMethod.Kind.VOICE)
    page = _sent_page(contact_method=voice, rule_index=0)
    email = ContactMethodFactory(user=page.user, kind=ContactMethod.Kind.EMAIL, value="x@example.com")
    nxt = _page(incident=page.incident, contact_method=email, rule_index=1, due_at=now + timedelta(minutes=10))
    other_step = _page(
        incident=page.incident, contact_method=email, step=1, rule_index=2, due_at=now + timedelta(minutes=10)
    )
    update = page_status_update(
        page_id=page.pk, provider_status=status, provider_id="SMabc", answered_by=answered_by, now=now
    )
    assert update.changed and update.status == expected
    assert update.promoted_page_ids == [nxt.pk]
    nxt.refresh_from_db()
    other_step.refresh_from_db()
    assert nxt.due_at == now
    assert other_step.due_at == now + timedelta(minutes=10)
    # Twilio retries the callback: nothing more happens.
    again = page_status_update(
        page_id=page.pk, provider_status=status, provider_id="SMabc", answered_by=answered_by, now=now
    )
    assert not again.changed and again.promoted_page_ids == []


def test_call_answered_by_a_person_counts_as_reached():
    voice = ContactMethodFactory(kind=ContactMethod.Kind.VOICE)
    page = _sent_page(contact_method=voice)
    assert page_status_update(page_id=page.pk, provider_status="ringing", provider_id="SMabc").changed is False
    assert page_status_update(
        page_id=page.pk, provider_status="in-progress", provider_id="SMabc", answered_by="human"
    ).changed
    assert not page_status_update(
        page_id=page.pk, provider_status="completed", provider_id="SMabc", answered_by="human"
    ).changed
    page.refresh_from_db()
    assert page.status == Page.Status.ANSWERED


def test_callback_arriving_before_the_worker_recorded_the_send_keeps_both(fake_twilio):
    page = _page()
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SENDING, claimed_at=timezone.now())
    assert page_status_update(page_id=page.pk, provider_status="delivered", provider_id="SMearly").changed
    page.refresh_from_db()
    assert page.status == Page.Status.DELIVERED and page.provider_id == "SMearly"


# --- console and e-mail channels -------------------------------------------------------------


def test_without_twilio_credentials_pages_go_to_the_outbox(settings, fake_twilio):
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    page = _page()
    outcome = page_deliver(page_id=page.pk)
    assert outcome.result == "sent"
    [row] = OutboxMessage.objects.all()
    assert row.page_id == page.pk and row.incident_id == page.incident_id
    assert row.channel == "sms" and row.to == page.destination and row.kind == "page"
    assert f"Backstop #{page.incident_id}" in row.body
    assert outcome.provider_id == f"OUTBOX{row.pk}"
    assert fake_twilio.requests == []


def test_outbox_page_stuck_in_sending_is_found_again(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    now = timezone.now()
    page = _page(due_at=now)
    OutboxMessage.objects.create(channel="sms", to=page.destination, body="x", page=page, incident=page.incident)
    Page.objects.filter(pk=page.pk).update(status=Page.Status.SENDING, claimed_at=now, attempts=1)
    assert pages_reconcile_stuck(now=now + timedelta(seconds=61)) == 1
    page.refresh_from_db()
    assert page.status == Page.Status.SENT
    assert OutboxMessage.objects.count() == 1


def test_email_page_uses_django_mail_with_a_stable_message_id():
    email = ContactMethodFactory(kind=ContactMethod.Kind.EMAIL, value="jonas@example.com")
    page = _page(contact_method=email, incident=IncidentFactory(title="Disk full", details="on db-1"))
    assert page_deliver(page_id=page.pk).result == "sent"
    [msg] = mail.outbox
    assert msg.to == ["jonas@example.com"]
    assert msg.subject.startswith(f"[Backstop #{page.incident_id}]") and "Disk full" in msg.subject
    assert msg.extra_headers["Message-ID"] == f"<backstop-page-{page.pk}@backstop.example.com>"
    assert "on db-1" in msg.body
    page.refresh_from_db()
    assert page.status == Page.Status.SENT
    assert TimelineEvent.objects.get(kind=TimelineEvent.Kind.PAGED).message.endswith("by e-mail (jonas@example.com)")


def test_voice_page_places_a_call_with_twiml_url_callbacks_and_machine_detection(fake_twilio):
    voice = ContactMethodFactory(kind=ContactMethod.Kind.VOICE)
    page = _page(contact_method=voice)
    assert page_deliver(page_id=page.pk).result == "sent"
    [req] = fake_twilio.create_requests("Calls")
    form = req["form"]
    assert form["Url"] == f"https://backstop.example.com/twilio/voice/page/{page.pk}/"
    assert form["StatusCallback"] == f"https://backstop.example.com/twilio/status/{page.pk}/"
    assert form["MachineDetection"] == "Enable"
    assert form["To"] == voice.value
    page.refresh_from_db()
    assert page.provider_id.startswith("CA")
    assert TimelineEvent.objects.get(kind=TimelineEvent.Kind.PAGED).message.endswith(f"by phone ({voice.value})")
