"""My schedule: change or cancel one's time off and overrides (creating them lives in views.teams).

Every write goes through rotations.services (the API's path); the views add the portal's
visibility rule: something you cannot see is a 404, something you see but may not change a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal import selectors
from portal.forms.common import apply_errors
from portal.forms.roster import ExclusionEditForm, OverrideEditForm
from portal.models import User
from portal.permissions import can_manage_exclusion_for, can_manage_override
from rotations.models import Exclusion, Override
from rotations.services import exclusions, overrides


def _me(request: HttpRequest) -> User:
    """The signed-in user (every view here is login_required; typed for the checker)."""
    if not isinstance(request.user, User):
        raise PermissionDenied("Sign in first.")
    return request.user


def _exclusion_or_404(request: HttpRequest, pk: int) -> Exclusion:
    me = _me(request)
    exclusion = selectors.exclusion_visible_get(user=me, pk=pk)
    if exclusion is None:
        raise Http404("No such time off.")
    if not can_manage_exclusion_for(me, exclusion.user):
        raise PermissionDenied(
            "You can change your own time off; managers that of people all of whose teams they manage."
        )
    return exclusion


def _override_or_404(request: HttpRequest, pk: int) -> Override:
    me = _me(request)
    override = selectors.override_visible_get(user=me, pk=pk)
    if override is None:
        raise Http404("No such override.")
    if not can_manage_override(
        me, team=override.rotation.team_id, taker=override.user, replaced=override.replaces_user
    ):
        raise PermissionDenied("You can change overrides you take part in; managers those of their team.")
    return override


def _edit_page(request: HttpRequest, *, form, obj, kind: str, status: int = 200) -> HttpResponse:
    return render(request, "portal/schedule_item_form.html", {"form": form, "obj": obj, "kind": kind}, status=status)


@login_required
def exclusion_edit(request: HttpRequest, pk: int) -> HttpResponse:
    exclusion = _exclusion_or_404(request, pk)
    if request.method != "POST":
        form = ExclusionEditForm(
            initial={"kind": exclusion.kind, "start": exclusion.start, "end": exclusion.end, "reason": exclusion.reason}
        )
        return _edit_page(request, form=form, obj=exclusion, kind="exclusion")
    form = ExclusionEditForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            exclusions.exclusion_update(
                exclusion=exclusion,
                actor=request.user,
                kind=data["kind"],
                start=data["start"],
                end=data["end"],
                reason=data["reason"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Time off changed. The roster routes around the new window.")
            return redirect("portal:schedule")
    return _edit_page(request, form=form, obj=exclusion, kind="exclusion", status=400)


@login_required
@require_POST
def exclusion_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    exclusion = _exclusion_or_404(request, pk)
    exclusions.exclusion_delete(exclusion=exclusion, actor=request.user)
    messages.success(request, "Time off cancelled. Your shifts in that window are yours again.")
    return redirect("portal:schedule")


@login_required
def override_edit(request: HttpRequest, pk: int) -> HttpResponse:
    override = _override_or_404(request, pk)
    if request.method != "POST":
        form = OverrideEditForm(initial={"start": override.start, "end": override.end, "reason": override.reason})
        return _edit_page(request, form=form, obj=override, kind="override")
    form = OverrideEditForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            overrides.override_update(
                override=override, actor=request.user, start=data["start"], end=data["end"], reason=data["reason"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Override changed.")
            return redirect("portal:schedule")
    return _edit_page(request, form=form, obj=override, kind="override", status=400)


@login_required
@require_POST
def override_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    override = _override_or_404(request, pk)
    overrides.override_delete(override=override, actor=request.user)
    messages.success(request, "Override cancelled. The rotation decides who holds the pager again.")
    return redirect("portal:schedule")
