"""Twilio webhooks for page delivery: status callbacks and the voice page (TwiML + keypresses).

Views parse, call a service, render. Every endpoint is behind `twilio_signed`.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from escalations.delivery import publish
from escalations.delivery.channels.twilio import voice_url
from escalations.delivery.channels.twilio_security import twilio_signed
from escalations.delivery.selectors import page_bundle_incidents, page_open_incidents
from escalations.delivery.sms_replies import sms_reply_handle
from escalations.delivery.status import answered_by_machine, page_status_update
from escalations.incidents import services
from escalations.models import Incident, Page
from portal.permissions import can_work_incidents

logger = logging.getLogger(__name__)

VOICE = "Polly.Joanna"
DIGIT_ACTIONS = {"1": "acknowledge", "2": "escalate", "3": "resolve"}


def _twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml")


def _enqueue(page_ids: list[int]) -> None:
    if page_ids:
        publish.page_enqueue(page_ids)


@require_POST
@twilio_signed
def page_status(request: HttpRequest, page_id: int) -> HttpResponse:
    post = request.POST
    if "CallStatus" in post:
        status, sid = post.get("CallStatus", ""), post.get("CallSid", "")
    else:
        status = post.get("MessageStatus") or post.get("SmsStatus", "")
        sid = post.get("MessageSid") or post.get("SmsSid", "")
    update = page_status_update(
        page_id=page_id, provider_status=status, provider_id=sid, answered_by=post.get("AnsweredBy") or None
    )
    _enqueue(update.promoted_page_ids)
    return HttpResponse(status=204)


def _gather_url(page_id: int) -> str:
    return voice_url(page_id) + "gather/"


def _read_incidents(page: Page, incidents: list[Incident]) -> VoiceResponse:
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=_gather_url(page.pk), method="POST", timeout=8)
    if len(incidents) == 1:
        i = incidents[0]
        gather.say(f"This is Backstop. Incident {i.pk} for team {i.team.name}: {i.title}.", voice=VOICE)
    else:
        gather.say(f"This is Backstop. {len(incidents)} incidents are open.", voice=VOICE)
        for i in incidents:
            gather.say(f"Incident {i.pk} for team {i.team.name}: {i.title}.", voice=VOICE)
    gather.say("Press 1 to acknowledge, 2 to escalate, 3 to resolve, or star to repeat.", voice=VOICE)
    response.append(gather)
    response.say("No key pressed. The incident stays open. Goodbye.", voice=VOICE)
    response.hangup()
    return response


@require_POST
@twilio_signed
def voice_page(request: HttpRequest, page_id: int) -> HttpResponse:
    page = get_object_or_404(Page.objects.select_related("user"), pk=page_id)
    answered_by = request.POST.get("AnsweredBy") or None
    if answered_by_machine(answered_by):
        # Voicemail: not reached. Leave no details on a recording; move on to the next rule.
        update = page_status_update(
            page_id=page.pk,
            provider_status="in-progress",
            provider_id=request.POST.get("CallSid", ""),
            answered_by=answered_by,
        )
        _enqueue(update.promoted_page_ids)
        response = VoiceResponse()
        response.say("This is Backstop. Please check your on-call alerts.", voice=VOICE)
        response.hangup()
        return _twiml(response)
    incidents = page_open_incidents(page)
    if not incidents:
        response = VoiceResponse()
        response.say("This is Backstop. The incident was already acknowledged or resolved. Goodbye.", voice=VOICE)
        response.hangup()
        return _twiml(response)
    return _twiml(_read_incidents(page, incidents))


@require_POST
@twilio_signed
def voice_page_gather(request: HttpRequest, page_id: int) -> HttpResponse:
    page = get_object_or_404(Page.objects.select_related("user"), pk=page_id)
    digits = (request.POST.get("Digits") or "").strip()
    response = VoiceResponse()
    if digits == "*":
        response.redirect(voice_url(page.pk), method="POST")
        return _twiml(response)
    action = DIGIT_ACTIONS.get(digits)
    if action is None:
        response.say("Sorry, that key does nothing.", voice=VOICE)
        response.redirect(voice_url(page.pk), method="POST")
        return _twiml(response)

    service = getattr(services, f"incident_{action}")
    incidents = page_open_incidents(page) if action != "resolve" else _resolvable(page)
    # Same rule as the portal and SMS replies: only managers/engineers of the team (or staff) act.
    incidents = [i for i in incidents if can_work_incidents(page.user, i.team_id)]
    changed = []
    for incident in incidents:
        if service(incident=incident, by=page.user, via="voice"):
            changed.append(incident.pk)
    past = {"acknowledge": "acknowledged", "escalate": "escalated", "resolve": "resolved"}[action]
    if changed:
        numbers = ", ".join(str(n) for n in changed)
        response.say(f"Incident {numbers} {past}. Goodbye.", voice=VOICE)
    else:
        response.say(f"Nothing to do: the incident was already {past} or closed. Goodbye.", voice=VOICE)
    response.hangup()
    return _twiml(response)


def _resolvable(page: Page) -> list[Incident]:
    return [i for i in page_bundle_incidents(page) if i.status != Incident.Status.RESOLVED]


@require_POST
@twilio_signed
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """Replies to SMS pages ("123A"), plus STOP/START/HELP. Answers with TwiML <Message>."""

    from_number = request.POST.get("From", "").strip()
    response = MessagingResponse()
    if from_number:
        response.message(sms_reply_handle(from_number=from_number, body=request.POST.get("Body", "")))
    return HttpResponse(str(response), content_type="text/xml")
