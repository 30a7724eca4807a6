"""The outbox: what the console channel would have sent, as each person's own phone would show it.

Without Twilio it stands in for the phones of the signed-in person only (escalations.delivery.outbox):
their pages and notices to their verified numbers, the codes they asked for; replies and keypresses act
as them, through their own verified numbers.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from escalations.delivery.outbox import outbox_messages_visible, outbox_verified_numbers
from escalations.delivery.sms_replies import sms_reply_handle
from escalations.incidents import services
from escalations.models import TimelineEvent
from portal.context_processors import _twilio_configured
from portal.permissions import can_work_incidents


@login_required
def outbox(request: HttpRequest) -> HttpResponse:
    if _twilio_configured():
        raise Http404("Twilio is configured: messages go out for real, there is no outbox.")
    return render(
        request,
        "portal/outbox.html",
        {
            "items": list(outbox_messages_visible(user=request.user)[:100]),
            "numbers": outbox_verified_numbers(user=request.user),
            "reply": request.session.pop("outbox_reply", None),
        },
    )


@login_required
@require_POST
def outbox_sms_reply(request: HttpRequest) -> HttpResponse:
    """Simulate an inbound SMS from one of the signed-in person's verified numbers, acting as them only."""
    if _twilio_configured():
        raise Http404()
    from_number = request.POST.get("from_number", "").strip()
    if from_number not in outbox_verified_numbers(user=request.user):
        raise PermissionDenied("You can only reply from your own verified numbers.")
    answer = sms_reply_handle(from_number=from_number, body=request.POST.get("body", ""), as_user=request.user)
    request.session["outbox_reply"] = answer
    messages.info(request, f"Backstop answered: {answer}")
    return redirect("portal:outbox")


# The same digits the real voice page offers (escalations/delivery/views.py).
KEYS = {
    "1": ("acknowledge", services.incident_acknowledge),
    "2": ("escalate", services.incident_escalate),
    "3": ("resolve", services.incident_resolve),
}


@login_required
@require_POST
def outbox_voice_key(request: HttpRequest, pk: int) -> HttpResponse:
    """Simulate pressing a key during a voice page, acting as the paged person (via=voice)."""
    if _twilio_configured():
        raise Http404()
    item = (
        outbox_messages_visible(user=request.user)
        .select_related("page__incident")
        .filter(pk=pk, channel="voice", page__isnull=False)
        .first()
    )
    if item is None:
        raise Http404("No such voice page.")
    paged = item.page.user
    if request.user.pk != paged.pk:
        raise PermissionDenied("Only the paged person can answer this call.")
    key = KEYS.get(request.POST.get("key", ""))
    if key is None:
        messages.error(request, "Press 1 to acknowledge, 2 to escalate or 3 to resolve.")
        return redirect("portal:outbox")
    label, action = key
    incident = item.page.incident
    if not can_work_incidents(paged, incident.team_id):
        messages.error(request, f"{paged.display_name} may not act on #{incident.pk}.")
        return redirect("portal:outbox")
    changed = action(incident=incident, by=paged, via=TimelineEvent.Via.VOICE)
    messages.success(
        request,
        f"#{incident.pk}: {label} {'done' if changed else 'changed nothing'} "
        f"(as {paged.display_name}, by phone keypress).",
    )
    return redirect("portal:outbox")
