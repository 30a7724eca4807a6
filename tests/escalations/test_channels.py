"""Channel selection, the Twilio client set-up, error classification, and page_enqueue's ETA rule."""

import socket
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from escalations.delivery import publish
from escalations.delivery import tasks as delivery_tasks
from escalations.delivery.channels import (
    OutgoingMessage,
    PermanentChannelError,
    TemporaryChannelError,
    UnknownOutcomeError,
    channel_for,
    page_reference,
    page_reference_ids,
)
from escalations.delivery.channels.console import ConsoleChannel
from escalations.delivery.channels.email import EmailChannel
from escalations.delivery.channels.twilio import TwilioSmsChannel, TwilioVoiceChannel, _build_client, twilio_client
from escalations.wakeups import eta_bucket


def _msg(**kw):
    return OutgoingMessage(**{"channel": "sms", "to": "+15550100001", "body": "hi Ref P7", "page_id": 7, **kw})


def test_channel_for_uses_twilio_when_configured_and_the_outbox_otherwise(settings):
    assert isinstance(channel_for("sms"), TwilioSmsChannel)
    assert isinstance(channel_for("voice"), TwilioVoiceChannel)
    assert isinstance(channel_for("email"), EmailChannel)
    settings.TWILIO_AUTH_TOKEN = ""
    assert isinstance(channel_for("sms"), ConsoleChannel) and channel_for("sms").kind == "sms"
    assert isinstance(channel_for("voice"), ConsoleChannel)
    assert isinstance(channel_for("email"), EmailChannel)
    with pytest.raises(ValueError):
        channel_for("pigeon")


def test_page_reference_round_trips_and_does_not_match_prefixes():
    assert page_reference(12) == "Ref P12"
    assert page_reference_ids("Backstop #3 x. Ref P12") == {12}
    assert page_reference_ids("Ref P123") == {123}
    assert page_reference_ids("no reference, P12") == set()


def test_the_twilio_client_is_built_once_and_points_at_the_configured_api(fake_twilio, settings):
    client = twilio_client()
    assert twilio_client() is client
    assert client.api.base_url == fake_twilio.base_url
    assert client.http_client.timeout == 0.5
    settings.TWILIO_API_BASE_URL = ""
    assert twilio_client().api.base_url == "https://api.twilio.com"


def test_sms_send_and_find_sent_against_the_fake(fake_twilio):
    channel = TwilioSmsChannel()
    result = channel.send(_msg())
    assert result.provider_id.startswith("SM") and result.status == "queued"
    req = fake_twilio.create_requests()[0]
    assert req["form"]["From"] == "+15005550006" and req["form"]["Body"] == "hi Ref P7"
    since = timezone.now() - timedelta(minutes=1)
    assert channel.find_sent(_msg(), since=since, exclude_ids=set()) == result.provider_id
    assert channel.find_sent(_msg(page_id=71), since=since, exclude_ids=set()) is None
    assert channel.find_sent(_msg(to="+15550100002"), since=since, exclude_ids=set()) is None


def test_find_sent_pages_through_long_lists(fake_twilio):
    channel = TwilioSmsChannel()
    channel.send(_msg())
    for i in range(60):  # newer messages push it onto the second page of results
        channel.send(_msg(body=f"other Ref P{1000 + i}", page_id=1000 + i))
    found = channel.find_sent(_msg(), since=timezone.now() - timedelta(minutes=1), exclude_ids=set())
    assert found == fake_twilio.messages()[0]["sid"]


def test_twilio_errors_are_classified(fake_twilio):
    channel = TwilioSmsChannel()
    fake_twilio.plan("500")
    with pytest.raises(TemporaryChannelError):
        channel.send(_msg())
    fake_twilio.plan("400")
    with pytest.raises(PermanentChannelError):
        channel.send(_msg())
    fake_twilio.plan("timeout")
    with pytest.raises(UnknownOutcomeError):
        channel.send(_msg())
    assert len(fake_twilio.messages()) == 1  # the timed-out one exists at Twilio


def test_connection_refused_is_temporary_not_unknown(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nobody listens there
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{port}"
    _build_client.cache_clear()
    try:
        with pytest.raises(TemporaryChannelError):
            TwilioSmsChannel().send(_msg())
    finally:
        _build_client.cache_clear()


def test_page_enqueue_uses_short_etas_and_leaves_long_waits_to_the_sweep(monkeypatch):
    calls = []
    monkeypatch.setattr(delivery_tasks.deliver_page, "apply_async", lambda args, eta=None: calls.append((args[0], eta)))
    monkeypatch.setattr(
        delivery_tasks.deliver_pages, "apply_async", lambda args, eta=None: calls.append((tuple(args[0]), eta))
    )
    now = timezone.now()
    soon, later = now + timedelta(seconds=60), now + timedelta(seconds=400)
    publish.page_enqueue([1, 2, 3, 4], {2: soon, 3: later, 4: now - timedelta(seconds=1)})
    # Due pages travel together; a short wait becomes an ETA (rounded up to its wake-up bucket, never
    # early); a long wait is left to the reconcile sweep.
    assert calls == [((1, 4), None), (2, eta_bucket(soon, settings.BACKSTOP_WAKE_GRANULARITY))]
    assert soon <= calls[1][1] < soon + settings.BACKSTOP_WAKE_GRANULARITY


def test_page_enqueue_chunks_large_batches(monkeypatch):
    calls = []
    monkeypatch.setattr(delivery_tasks.deliver_pages, "apply_async", lambda args, eta=None: calls.append(args[0]))
    publish.page_enqueue(range(45))
    assert [len(c) for c in calls] == [20, 20, 5]
    assert sorted(i for c in calls for i in c) == list(range(45))


def test_page_enqueue_survives_a_broker_outage(monkeypatch):
    def boom(*a, **kw):
        raise ConnectionError("redis down")

    monkeypatch.setattr(delivery_tasks.deliver_page, "apply_async", boom)
    publish.page_enqueue([1])  # must not raise: the sweep re-finds due pages


def test_beat_schedules_the_reconcile_job(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["page-reconcile"]
    assert entry["task"] == "escalations.page_reconcile" and entry["schedule"] == 5.0
    assert "escalations.delivery.tasks" in settings.CELERY_IMPORTS
    assert delivery_tasks.deliver_page.name == "escalations.deliver_page"
    assert delivery_tasks.deliver_page.acks_late is True


def test_a_voice_message_that_is_not_a_page_is_read_out_inline(fake_twilio):
    """Verification calls have no page (and so no /twilio/voice/page/<id>/ to fetch): inline TwiML."""
    TwilioVoiceChannel().send(OutgoingMessage(channel="voice", to="+15550100001", body="Your code is 1, 2, 3."))
    (req,) = fake_twilio.create_requests("Calls")
    assert "Url" not in req["form"] and "StatusCallback" not in req["form"]
    assert req["form"]["Twiml"].endswith("<Response><Say>Your code is 1, 2, 3.</Say></Response>")
