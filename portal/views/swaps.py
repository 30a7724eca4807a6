"""Swap requests on My schedule: ask a colleague to take one's shifts; they accept or decline.

Only an accepted request changes the roster (rotations.services.swaps makes the override)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.forms.common import apply_errors
from portal.forms.roster import SwapRequestForm
from portal.models import User
from portal.views.teams import _schedule_render
from rotations.models import SwapRequest
from rotations.services import swaps


def _me(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied("Sign in first.")
    return request.user


@login_required
@require_POST
def swap_create(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    form = SwapRequestForm(request.POST, user=me)
    if form.is_valid():
        data = form.cleaned_data
        try:
            swap = swaps.swap_request_create(
                rotation=data["rotation"],
                requester=me,
                taker=data["taker"],
                start=data["start"],
                end=data["end"],
                reason=data["reason"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Asked {swap.taker.display_name}; your shifts stay yours until they accept.")
            return redirect("portal:schedule")
    return _schedule_render(request, swap_form=form, status=400)


def _answer(request: HttpRequest, pk: int, action) -> SwapRequest:
    me = _me(request)
    # Only the two people of a request know it exists.
    if not SwapRequest.objects.filter(Q(requester=me) | Q(taker=me), pk=pk).exists():
        raise Http404("No such request.")
    return action(swap_id=pk, actor=me, now=timezone.now())


def _answered(request: HttpRequest, pk: int, action, done: str) -> HttpResponse:
    try:
        _answer(request, pk, action)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _schedule_render(request, status=400)
    messages.success(request, done)
    return redirect("portal:schedule")


@login_required
@require_POST
def swap_accept(request: HttpRequest, pk: int) -> HttpResponse:
    return _answered(request, pk, swaps.swap_request_accept, "Accepted: you hold those shifts now.")


@login_required
@require_POST
def swap_decline(request: HttpRequest, pk: int) -> HttpResponse:
    return _answered(request, pk, swaps.swap_request_decline, "Declined; they have been told.")


@login_required
@require_POST
def swap_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _answered(request, pk, swaps.swap_request_cancel, "Request withdrawn.")


@require_http_methods(["GET", "POST"])
def swap_answer(request: HttpRequest, token: str) -> HttpResponse:
    """The one-click links of the swap e-mail: GET confirms, POST answers. No sign-in: the signed link
    is the credential, and it answers only as the colleague asked (rotations.services.swaps)."""
    try:
        if request.method == "POST":
            swap, done = swaps.swap_link_use(token=token, now=timezone.now()), True
            action = "accept" if swap.status == SwapRequest.Status.ACCEPTED else "decline"
        else:
            link = swaps.swap_link_get(token=token)
            swap, action, done = link.swap, link.action, False
    except swaps.SwapLinkError as exc:
        return render(request, "portal/swap_answer.html", {"error": str(exc)}, status=410)
    response = render(request, "portal/swap_answer.html", {"swap": swap, "action": action, "done": done})
    response["Cache-Control"] = "private, no-store"
    return response
