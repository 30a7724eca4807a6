"""Logs carry no phone numbers, transcripts, recording URLs or tokens."""

import logging

import pytest

from config.log_redaction import RedactFilter, redact
from tests.escalations.phone_support import CALLER, call_params, make_line, paged_team, twilio_post

RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC00/Recordings/RE0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("SMS to +4915123456789 failed", "+4915123456789"),
        ("call from +1 (555) 014-2001 refused", "555"),
        ("bare number 4915123456789", "4915123456789"),
        (f"fetch {RECORDING} failed", "RE0123456789abcdef"),
        ("token bst_Abcdefghijklmnop_qrstuvwx used", "bst_Abcdefghijklmnop"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop"),
        ("{'TranscriptionText': ['Checkout is down, call Dana']}", "Checkout"),
        ("reset at https://oncall.example.com/accounts/password/reset/key/3-abc-def/", "3-abc-def"),
    ],
)
def test_redact_masks_personal_data_and_secrets(text, secret):
    assert secret not in redact(text)


def test_redact_keeps_ordinary_lines():
    line = "page 1234 for incident 56 sent at 2026-11-28 15:28:00 (attempt 2)"
    assert redact(line) == line


def test_filter_rewrites_message_args_and_exception_text():
    try:
        raise ValueError("The 'To' number +15550142001 is not a valid phone number")
    except ValueError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "SMS to %s: %s",
            ("+15550142001", "x"),
            exc_info=__import__("sys").exc_info(),
        )
    assert RedactFilter().filter(record)
    assert "+1555" not in record.getMessage() and "+1555" not in record.exc_text


def test_console_handler_uses_the_filter():
    from config.settings import base

    assert "redact" in base.LOGGING["handlers"]["console"]["filters"]
    assert base.LOGGING["filters"]["redact"]["()"] == "config.log_redaction.RedactFilter"


@pytest.mark.django_db
def test_a_failing_callback_logs_no_number_or_transcript(client, caplog, monkeypatch):
    from escalations.phone import services as phone

    make_line(paged_team()[0])

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(phone, "call_transcription_received", broken)
    params = call_params(
        "CA" + "7" * 32,
        TranscriptionText="Checkout is down, call Dana on +15550142099",
        TranscriptionStatus="completed",
        RecordingUrl=RECORDING,
    )
    with caplog.at_level(logging.WARNING):
        assert twilio_post(client, "phone_line_transcription", params).status_code == 204
        params.pop("CallSid")
        assert twilio_post(client, "phone_line_transcription", params).status_code == 204
    logged = caplog.text
    assert "Emergency line callback" in logged and "without CallSid" in logged
    for secret in (CALLER, "Checkout is down", "+15550142099", "RE0123456789"):
        assert secret not in logged
