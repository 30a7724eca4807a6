"""Twilio SMS and voice channels (the real SDK; pointed at a fake by TWILIO_API_BASE_URL in tests)."""

from __future__ import annotations

import functools
import threading
from datetime import datetime

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from urllib3.exceptions import MaxRetryError, NewConnectionError

from escalations.delivery.channels.base import (
    ChannelError,
    OutgoingMessage,
    PermanentChannelError,
    SendResult,
    TemporaryChannelError,
    UnknownOutcomeError,
    page_reference_ids,
)

# Twilio error codes that no retry will fix even though Twilio answered 4xx/5xx.
_PERMANENT_CODES = {21211, 21214, 21217, 21219, 21401, 21408, 21610, 21612, 21614, 13224, 13227}


def twilio_configured() -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN)


@functools.lru_cache(maxsize=64)
def _build_client(account_sid: str, auth_token: str, base_url: str, timeout: float, thread: int = 0) -> Client:
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
    if base_url:
        # Every v2010 URL is built from the Api domain's base_url (twilio.base.domain.Domain).
        client.api.base_url = base_url.rstrip("/")
    return client


def twilio_client() -> Client:
    """One client per thread (and settings combination, so tests can point it at a fake): the SDK's
    HTTP client keeps the last response on itself and returns it from there, so two threads sharing one
    could each read the other's answer, and a page would be recorded with another page's message id."""
    return _build_client(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        settings.TWILIO_API_BASE_URL,
        float(settings.TWILIO_HTTP_TIMEOUT),
        threading.get_ident(),
    )


def status_callback_url(page_id: int) -> str:
    return f"{settings.PUBLIC_BASE_URL}/twilio/status/{page_id}/"


def voice_url(page_id: int) -> str:
    return f"{settings.PUBLIC_BASE_URL}/twilio/voice/page/{page_id}/"


def _connection_never_made(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


def _classify(exc: Exception) -> ChannelError:
    if isinstance(exc, TwilioRestException):
        detail = f"Twilio {exc.status} (code {exc.code}): {exc.msg}"
        if exc.code in _PERMANENT_CODES:
            return PermanentChannelError(detail)
        if exc.status == 429 or exc.status >= 500:
            return TemporaryChannelError(detail)
        return PermanentChannelError(detail)
    if isinstance(exc, requests.ConnectionError) and _connection_never_made(exc):
        return TemporaryChannelError(f"could not connect to Twilio: {exc}")
    if isinstance(exc, requests.RequestException):
        # Read timeout or a connection dropped after the request went out: Twilio may have acted.
        return UnknownOutcomeError(f"no answer from Twilio: {exc}")
    return UnknownOutcomeError(f"unexpected error calling Twilio: {exc!r}")


def _lookup_error(exc: Exception) -> ChannelError:
    return TemporaryChannelError(f"could not list Twilio resources: {exc}")


class TwilioSmsChannel:
    kind = "sms"
    # A network call touching no database: a batch's sends may go out from several threads at once.
    concurrent_sends = True

    def send(self, message: OutgoingMessage) -> SendResult:
        # extra["from_number"]: answer from the number the person called (the emergency line's).
        from_number = message.extra.get("from_number") or settings.TWILIO_FROM_NUMBER
        kwargs = {"to": message.to, "from_": from_number, "body": message.body}
        if message.page_id:
            kwargs["status_callback"] = status_callback_url(message.page_id)
        try:
            msg = twilio_client().messages.create(**kwargs)
        except (TwilioException, requests.RequestException) as exc:
            raise _classify(exc) from exc
        return SendResult(provider_id=msg.sid, status=msg.status or "queued")

    def find_sent(self, message: OutgoingMessage, *, since: datetime, exclude_ids: set[str]) -> str | None:
        # The page reference in the body identifies the message exactly. No DateSent filter: a message
        # still queued at Twilio has no date_sent yet and would be missed (and then sent twice).
        try:
            found = twilio_client().messages.list(to=message.to, from_=settings.TWILIO_FROM_NUMBER, limit=200)
        except (TwilioException, requests.RequestException) as exc:
            raise _lookup_error(exc) from exc
        for msg in found:
            if message.page_id in page_reference_ids(msg.body or "") and msg.sid not in exclude_ids:
                return msg.sid
        return None


class TwilioVoiceChannel:
    kind = "voice"
    concurrent_sends = True

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.page_id is None:
            return self._say(message)
        try:
            call = twilio_client().calls.create(
                to=message.to,
                from_=settings.TWILIO_FROM_NUMBER,
                url=voice_url(message.page_id),
                method="POST",
                status_callback=status_callback_url(message.page_id),
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                status_callback_method="POST",
                machine_detection="Enable",
            )
        except (TwilioException, requests.RequestException) as exc:
            raise _classify(exc) from exc
        return SendResult(provider_id=call.sid, status=call.status or "queued")

    def _say(self, message: OutgoingMessage) -> SendResult:
        """Not a page (a verification code): nothing to press, so the words travel inline as TwiML."""
        response = VoiceResponse()
        response.say(message.body)
        try:
            call = twilio_client().calls.create(to=message.to, from_=settings.TWILIO_FROM_NUMBER, twiml=str(response))
        except (TwilioException, requests.RequestException) as exc:
            raise _classify(exc) from exc
        return SendResult(provider_id=call.sid, status=call.status or "queued")

    def find_sent(self, message: OutgoingMessage, *, since: datetime, exclude_ids: set[str]) -> str | None:
        # A call carries no body: match to/from and creation after the claim, skipping calls that
        # already belong to another page. No StartTime filter: a queued call has no start_time.
        try:
            found = twilio_client().calls.list(to=message.to, from_=settings.TWILIO_FROM_NUMBER, limit=100)
        except (TwilioException, requests.RequestException) as exc:
            raise _lookup_error(exc) from exc
        candidates = [
            c for c in found if c.sid not in exclude_ids and c.date_created is not None and c.date_created >= since
        ]
        candidates.sort(key=lambda c: c.date_created)
        return candidates[0].sid if candidates else None
