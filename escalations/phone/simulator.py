"""Replay the requests Twilio sends for a voicemail, signed, into this very portal.

A newcomer without a Twilio account sees the whole path (webhooks, signature check, record,
incident, escalation) exactly as Twilio would drive it. The requests go through Django's
full handler stack in-process (django.test.Client), not over HTTP: a single-worker server
calling itself over the network would deadlock.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from escalations.models import CallRecord, PhoneLine


def _host(public_host: str) -> str:
    """The public host when Django accepts it; the Host header plays no part in the signature."""
    if public_host and validate_host(public_host.split(":")[0], settings.ALLOWED_HOSTS):
        return public_host
    literal = [h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")]
    return literal[0] if literal else "localhost"


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def call_simulate(
    *,
    line: PhoneLine,
    from_number: str,
    transcript: str,
    duration: int,
    digit: str = "",
    stir_verstat: str = "TN-Validation-Passed-A",
) -> CallRecord | None:
    """incoming → (menu) → recorded → recording status → transcription → completed. By default the
    caller ID is attested, as a carrier attests its own subscriber's call."""
    public = urlsplit(settings.PUBLIC_BASE_URL)
    client = Client(HTTP_HOST=_host(public.netloc), enforce_csrf_checks=False)
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    secure = public.scheme == "https"
    account = settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32
    call_sid, recording_sid = _sid("CA"), _sid("RE")
    recording_url = (
        f"{(settings.TWILIO_API_BASE_URL or 'https://api.twilio.com').rstrip('/')}"
        f"/2010-04-01/Accounts/{account}/Recordings/{recording_sid}"
    )
    base = {
        "CallSid": call_sid,
        "AccountSid": account,
        "From": from_number,
        "To": line.number,
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }

    def post(name: str, **params: str) -> None:
        data = {**base, **{k: str(v) for k, v in params.items()}}
        path = reverse(f"twilio:{name}")
        signature = validator.compute_signature(settings.PUBLIC_BASE_URL + path, data)
        client.post(path, data, secure=secure, HTTP_X_TWILIO_SIGNATURE=signature)

    post("phone_line_incoming", CallStatus="ringing", StirVerstat=stir_verstat)
    # Mark it before anything can open an incident: a simulated call never texts anyone.
    CallRecord.objects.filter(call_sid=call_sid).update(simulated=True)
    if digit:
        post("phone_line_menu", CallStatus="in-progress", Digits=digit)
    recording = {"RecordingSid": recording_sid, "RecordingUrl": recording_url, "RecordingDuration": duration}
    post("phone_line_recorded", CallStatus="in-progress", Digits="#", **recording)
    post(
        "phone_line_recording_status",
        RecordingStatus="completed",
        RecordingChannels="1",
        RecordingSource="RecordVerb",
        **recording,
    )
    if transcript:
        post(
            "phone_line_transcription",
            TranscriptionSid=_sid("TR"),
            TranscriptionStatus="completed",
            TranscriptionText=transcript,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url,
            CallStatus="completed",
        )
    post("phone_line_status", CallStatus="completed", CallDuration=str(duration + 12))
    return CallRecord.objects.filter(call_sid=call_sid).first()
