"""Emergency line HTTP: Twilio voice webhooks (TwiML), recording playback, staff call pages.

Webhooks parse the form Twilio posted, call a service in escalations.phone and answer with
TwiML built by the SDK. A malformed or unexpected request never gets a 500: the caller hears
something sensible, status callbacks get 204, and the problem is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

import requests
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from twilio.twiml.voice_response import VoiceResponse

from escalations.delivery.channels.twilio_security import twilio_signed
from escalations.models import CallRecord, PhoneLine
from escalations.phone import connect as phone_connect
from escalations.phone import selectors as phone_selectors
from escalations.phone import services as phone
from escalations.phone.simulator import call_simulate as simulate
from portal.permissions import can_view_team, is_staff

logger = logging.getLogger(__name__)
Outcome = CallRecord.Outcome

SORRY = "Sorry, we cannot take your call right now. Please try again later. Goodbye."
NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."
BLOCKED = "Sorry, we cannot take calls from this number. Goodbye."
RATE_LIMITED = (
    "Sorry, we have received several calls from you in the last hour and have passed them on. "
    "Please wait for us to get back to you. Goodbye."
)


def _abs(name: str, **query: object) -> str:
    """Absolute URL on PUBLIC_BASE_URL: the URL Twilio requests is the one it signs."""
    url = settings.PUBLIC_BASE_URL + reverse(f"twilio:{name}")
    return f"{url}?{urlencode(query)}" if query else url


def _twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml")


def _say(response, line: PhoneLine | None, text: str) -> None:
    if line is None:
        response.say(text)
    else:
        response.say(text, language=line.language, voice=line.voice)


def _goodbye(line: PhoneLine | None, text: str) -> HttpResponse:
    response = VoiceResponse()
    _say(response, line, text)
    response.hangup()
    return _twiml(response)


def _voice_webhook(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed POST only; a request without CallSid or a bug below ends the call politely."""

    @require_POST
    @twilio_signed
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.POST.get("CallSid"):
            # Parameter names only: the values are callers' numbers and transcripts.
            logger.warning(
                "Twilio voice request to %s without CallSid (parameters %s)", request.path, sorted(request.POST)
            )
            return _goodbye(None, SORRY)
        try:
            return view(request, *args, **kwargs)
        except Exception:
            logger.exception("Emergency line webhook %s failed for %s", request.path, request.POST.get("CallSid"))
            return _goodbye(None, SORRY)

    return wrapper


def _status_webhook(view: Callable[..., None]) -> Callable[..., HttpResponse]:
    """Signed POST only; always 204 (Twilio does not read the body), failures are logged."""

    @require_POST
    @twilio_signed
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.POST.get("CallSid"):
            logger.warning("Twilio callback to %s without CallSid (parameters %s)", request.path, sorted(request.POST))
        else:
            try:
                view(request, *args, **kwargs)
            except Exception:
                logger.exception("Emergency line callback %s failed for %s", request.path, request.POST.get("CallSid"))
        return HttpResponse(status=204)

    return wrapper


def _record_twiml(response: VoiceResponse, record: CallRecord) -> VoiceResponse:
    line = record.line
    response.record(
        action=_abs("phone_line_recorded"),
        method="POST",
        max_length=line.max_recording_seconds,
        timeout=5,
        finish_on_key="#",
        play_beep=True,
        recording_status_callback=_abs("phone_line_recording_status"),
        recording_status_callback_method="POST",
        transcribe=True,
        transcribe_callback=_abs("phone_line_transcription"),
    )
    # Reached only when nothing was recorded (Twilio skips the action for an empty recording).
    _say(response, line, "We did not receive a message. If this is an emergency, please call again. Goodbye.")
    response.hangup()
    return response


def _menu_prompt(line: PhoneLine, options) -> str:
    parts = [line.menu_prompt] if line.menu_prompt else [f"For {o.label}, press {o.digit}." for o in options]
    if line.connect_now_enabled:
        parts.append("To be connected to the engineer on call now, press 0.")
    return " ".join(parts)


def _record(call_sid: str) -> CallRecord | None:
    return CallRecord.objects.select_related("line__team", "customer_contact").filter(call_sid=call_sid).first()


@_voice_webhook
def line_incoming(request: HttpRequest) -> HttpResponse:
    post = request.POST
    line = phone_selectors.line_for_number(number=post.get("To", ""))
    record = phone.call_start(
        line=line,
        call_sid=post["CallSid"],
        from_number=post.get("From", ""),
        to_number=post.get("To", ""),
        now=timezone.now(),
        stir_verstat=post.get("StirVerstat", ""),
    )
    if record.outcome == Outcome.NOT_IN_SERVICE:
        return _goodbye(line, NOT_IN_SERVICE)
    if record.outcome == Outcome.BLOCKED:
        return _goodbye(line, BLOCKED)
    if record.outcome == Outcome.RATE_LIMITED:
        return _goodbye(line, RATE_LIMITED)
    response = VoiceResponse()
    _say(response, line, line.greeting)
    if line.business_hours_message and not phone_selectors.line_in_business_hours(line=line, at=record.started_at):
        _say(response, line, line.business_hours_message)
    options = list(line.menu_options.all()) if line.menu_enabled else []
    if options or line.connect_now_enabled:
        gather = response.gather(num_digits=1, action=_abs("phone_line_menu"), method="POST", timeout=6)
        _say(gather, line, _menu_prompt(line, options))
        # No key pressed: leave a message for the line's own team.
        response.redirect(_abs("phone_line_record"), method="POST")
        return _twiml(response)
    return _twiml(_record_twiml(response, record))


@_voice_webhook
def line_menu(request: HttpRequest) -> HttpResponse:
    post = request.POST
    record = _record(post["CallSid"])
    if record is None or record.line is None:
        return _goodbye(None, SORRY)
    digits = post.get("Digits", "").strip()
    response = VoiceResponse()
    if digits == "0" and record.line.connect_now_enabled:
        return _twiml(_connect_twiml(response, record, attempt=0))
    option = phone.call_menu_choice(call_sid=record.call_sid, digits=digits, now=timezone.now())
    if option is None:
        _say(response, record.line, "Sorry, that is not an option. Please leave your message after the tone.")
    else:
        _say(response, record.line, f"Please leave your message for {option.label} after the tone.")
    return _twiml(_record_twiml(response, record))


@_voice_webhook
def line_record(request: HttpRequest) -> HttpResponse:
    record = _record(request.POST["CallSid"])
    if record is None or record.line is None:
        return _goodbye(None, SORRY)
    return _twiml(_record_twiml(VoiceResponse(), record))


@_voice_webhook
def line_recorded(request: HttpRequest) -> HttpResponse:
    post = request.POST
    record = phone.call_recording_received(
        call_sid=post["CallSid"],
        recording_sid=post.get("RecordingSid", ""),
        recording_url=post.get("RecordingUrl", ""),
        duration=post.get("RecordingDuration"),
        now=timezone.now(),
        source="action",
    )
    line = record.line if record else None
    if record is not None and record.outcome == Outcome.TOO_SHORT:
        return _goodbye(line, "Your message was too short to pass on. Please call again. Goodbye.")
    if line is None:
        return _goodbye(None, SORRY)
    return _goodbye(line, line.thank_you_message)


@_status_webhook
def line_recording_status(request: HttpRequest) -> None:
    post = request.POST
    phone.call_recording_received(
        call_sid=post["CallSid"],
        recording_sid=post.get("RecordingSid", ""),
        recording_url=post.get("RecordingUrl", ""),
        duration=post.get("RecordingDuration"),
        status=post.get("RecordingStatus", "completed").lower(),
        now=timezone.now(),
        source="status",
    )


@_status_webhook
def line_transcription(request: HttpRequest) -> None:
    post = request.POST
    phone.call_transcription_received(
        call_sid=post["CallSid"],
        text=post.get("TranscriptionText", ""),
        status=post.get("TranscriptionStatus", ""),
        recording_sid=post.get("RecordingSid", ""),
        recording_url=post.get("RecordingUrl", ""),
        now=timezone.now(),
    )


@_status_webhook
def line_status(request: HttpRequest) -> None:
    post = request.POST
    phone.call_status_received(
        call_sid=post["CallSid"],
        call_status=post.get("CallStatus", ""),
        duration=post.get("CallDuration"),
        now=timezone.now(),
    )


# ------------------------------------------------------------------------ connect me now


def _connect_twiml(response: VoiceResponse, record: CallRecord, *, attempt: int) -> VoiceResponse:
    """Ring the on-call engineers one after another; if nobody accepts, take a voicemail."""
    line = record.line
    targets = phone_connect.call_connect_targets(record=record, now=timezone.now())
    if attempt >= len(targets):
        _say(response, line, "Nobody could take your call. Please leave a message after the tone.")
        return _record_twiml(response, record)
    if attempt == 0:
        _say(response, line, "Connecting you to the engineer on call. Please hold.")
    target = targets[attempt]
    phone_connect.call_connect_dialing(call_sid=record.call_sid, attempt=attempt, user_id=target.user.pk)
    dial = response.dial(
        action=_abs("phone_line_dial_done", attempt=attempt),
        method="POST",
        timeout=line.connect_timeout_seconds,
        caller_id=line.number,
        answer_on_bridge=True,
    )
    # The whisper asks the engineer to press 1, so their own voicemail cannot take the call.
    dial.number(target.number, url=_abs("phone_line_whisper", call=record.call_sid, user=target.user.pk), method="POST")
    return response


@_voice_webhook
def line_dial_done(request: HttpRequest) -> HttpResponse:
    post = request.POST
    try:
        attempt = int(request.GET.get("attempt", "0"))
    except ValueError:
        attempt = 0
    connected = phone_connect.call_dial_finished(
        call_sid=post["CallSid"],
        attempt=attempt,
        dial_status=post.get("DialCallStatus", ""),
        duration=post.get("DialCallDuration"),
        now=timezone.now(),
    )
    record = _record(post["CallSid"])
    if record is None or record.line is None:
        return _goodbye(None, SORRY)
    if connected:
        response = VoiceResponse()
        response.hangup()
        return _twiml(response)
    return _twiml(_connect_twiml(VoiceResponse(), record, attempt=attempt + 1))


@_voice_webhook
def line_whisper(request: HttpRequest) -> HttpResponse:
    record = _record(request.GET.get("call", ""))
    response = VoiceResponse()
    if record is None or record.line is None:
        response.hangup()
        return _twiml(response)
    gather = response.gather(
        num_digits=1,
        timeout=8,
        method="POST",
        action=_abs("phone_line_whisper_accept", call=record.call_sid, user=request.GET.get("user", "")),
    )
    _say(
        gather,
        record.line,
        f"Emergency call from {phone_selectors.caller_label(record)} on {record.line.name}. Press 1 to accept.",
    )
    response.hangup()
    return _twiml(response)


@_voice_webhook
def line_whisper_accept(request: HttpRequest) -> HttpResponse:
    response = VoiceResponse()
    user = request.GET.get("user", "")
    if request.POST.get("Digits") == "1" and user.isdigit():
        phone_connect.call_connect_accepted(call_sid=request.GET.get("call", ""), user_id=int(user), now=timezone.now())
        _say(response, None, "Connecting.")  # an answered Number TwiML that ends bridges the call
    else:
        response.hangup()
    return _twiml(response)


# ------------------------------------------------------------------------------ portal


RECORDING_CHUNK = 64 * 1024


def _recording_base() -> str:
    return (settings.TWILIO_API_BASE_URL or "https://api.twilio.com").rstrip("/") + "/"


@login_required
@require_GET
def call_recording(request: HttpRequest, pk: int) -> HttpResponse:
    """Stream the voicemail through the portal: Twilio's URL and credentials never reach the browser."""
    record = get_object_or_404(CallRecord.objects.select_related("line__team", "menu_team"), pk=pk)
    team = phone_selectors.call_team(record)
    if team is None or not can_view_team(request.user, team):
        raise PermissionDenied
    if not record.recording_url:
        raise Http404("This call has no recording.")
    # Only ever send the account credentials to Twilio (or the configured stand-in).
    if not record.recording_url.startswith(_recording_base()):
        logger.warning("Call %s: refusing to fetch a recording from outside %s", record.pk, _recording_base())
        raise Http404("Recording unavailable.")
    url = record.recording_url if record.recording_url.endswith(".mp3") else record.recording_url + ".mp3"
    try:
        upstream = requests.get(
            url,
            auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
            stream=True,
            timeout=settings.TWILIO_HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        logger.warning("Call %s: recording fetch failed: %s", record.pk, exc)
        return HttpResponse("Recording unavailable, try again later.", status=502, content_type="text/plain")
    if upstream.status_code != 200:
        upstream.close()
        logger.warning("Call %s: recording fetch returned %s", record.pk, upstream.status_code)
        return HttpResponse("Recording unavailable.", status=502, content_type="text/plain")

    def chunks():
        try:
            yield from upstream.iter_content(RECORDING_CHUNK)
        finally:
            upstream.close()

    response = StreamingHttpResponse(chunks(), content_type="audio/mpeg")
    response["Content-Disposition"] = f'inline; filename="{record.reference}.mp3"'
    response["Cache-Control"] = "private, no-store"
    return response


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_staff(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def simulator_enabled() -> bool:
    return settings.DEBUG or getattr(settings, "BACKSTOP_PHONE_SIMULATOR", False)


@staff_required
@require_GET
def call_log(request: HttpRequest) -> HttpResponse:
    calls = CallRecord.objects.select_related("line", "customer_contact", "incident", "menu_team")[:200]
    return render(request, "phone/call_log.html", {"calls": calls, "simulator": simulator_enabled()})


class SimulateCallForm(forms.Form):
    line = forms.ModelChoiceField(queryset=PhoneLine.objects.filter(enabled=True))
    from_number = forms.CharField(initial="+15550142001", max_length=16, help_text="The caller's number (E.164)")
    digit = forms.CharField(required=False, max_length=1, help_text="Menu key to press, if the line has a menu")
    transcript = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        initial="Our checkout is down, customers cannot pay. Please call back.",
    )
    duration = forms.IntegerField(min_value=0, max_value=3600, initial=14, help_text="Recording length in seconds")


@staff_required
@require_http_methods(["GET", "POST"])
def call_simulate(request: HttpRequest) -> HttpResponse:
    if not simulator_enabled():
        raise Http404("The call simulator is off (DEBUG or BACKSTOP_PHONE_SIMULATOR).")

    form = SimulateCallForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not settings.TWILIO_AUTH_TOKEN:
            messages.error(request, "Set TWILIO_AUTH_TOKEN (any value) so the simulated requests can be signed.")
        else:
            data = form.cleaned_data
            record = simulate(
                line=data["line"],
                from_number=data["from_number"],
                digit=data["digit"],
                transcript=data["transcript"],
                duration=data["duration"],
            )
            if record is not None:
                messages.success(request, f"Simulated call {record.reference}: {record.get_outcome_display()}.")
            return redirect("calls:log")
    return render(request, "phone/simulate.html", {"form": form})
