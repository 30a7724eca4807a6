"""Profile: name, time zone, contact methods with verification, notification rules, API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from escalations.slack import services as slack_services
from escalations.slack.client import slack_configured
from portal import services
from portal.forms.common import apply_errors
from portal.forms.profile import (
    ApiTokenForm,
    ContactMethodForm,
    NotificationPreferenceForm,
    NotificationRuleForm,
    ProfileForm,
    VerifyForm,
    leads_text,
)
from portal.models import ApiToken, ContactMethod, NotificationRule
from rotations.services import notification_preferences


def _render(request: HttpRequest, status: int = 200, **forms) -> HttpResponse:
    user = request.user
    context = {
        "profile_form": forms.get("profile_form")
        or ProfileForm(initial={"full_name": user.full_name, "time_zone": user.time_zone}),
        "method_form": forms.get("method_form") or ContactMethodForm(),
        "rule_form": forms.get("rule_form") or NotificationRuleForm(user=user),
        "token_form": forms.get("token_form") or ApiTokenForm(),
        "notice_form": forms.get("notice_form") or _notice_form_initial(user),
        "verify_errors": forms.get("verify_errors") or {},
        "methods": list(ContactMethod.objects.filter(user=user).order_by("kind", "id")),
        "slack_configured": slack_configured(),
        "rules": list(
            NotificationRule.objects.filter(user=user).select_related("contact_method").order_by("order", "delay", "id")
        ),
        "tokens": list(ApiToken.objects.filter(user=user).order_by("-created_at")),
        "now": timezone.now(),
        "new_token": forms.get("new_token"),
        "new_token_expires_at": forms.get("new_token_expires_at"),
    }
    return render(request, "portal/profile.html", context, status=status)


def _notice_form_initial(user) -> NotificationPreferenceForm:
    pref = notification_preferences.notification_preference_get(user=user)
    return NotificationPreferenceForm(
        initial={
            "reminder_leads": leads_text(list(pref.reminder_lead_minutes)),
            "reminder_kinds": pref.reminder_kinds,
            "handover_kinds": pref.handover_kinds,
            "roster_change_kinds": pref.roster_change_kinds,
        }
    )


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                services.profile_update(
                    user=request.user,
                    full_name=form.cleaned_data["full_name"],
                    time_zone=form.cleaned_data["time_zone"],
                )
                messages.success(request, "Profile saved.")
                return redirect("portal:profile")
            except ValidationError as exc:
                apply_errors(form, exc)
        return _render(request, status=400, profile_form=form)
    return _render(request)


@login_required
@require_POST
def method_add(request: HttpRequest) -> HttpResponse:
    form = ContactMethodForm(request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():  # a refused first code leaves no unverifiable method behind
                method = services.contact_method_add(user=request.user, **form.cleaned_data)
                services.contact_method_verification_send(method=method)
            messages.success(request, f"Added {method}. We sent a 6-digit code to it: enter it below to verify.")
            return redirect("portal:profile")
        except ValidationError as exc:
            apply_errors(form, exc)
    return _render(request, status=400, method_form=form)


def _own_method(request: HttpRequest, pk: int) -> ContactMethod:
    return get_object_or_404(ContactMethod, pk=pk, user=request.user)


@login_required
@require_POST
def slack_connect(request: HttpRequest) -> HttpResponse:
    """Add the person's Slack account as a contact method, found by their e-mail (verified by Slack)."""
    try:
        method = slack_services.slack_contact_method_connect(user=request.user, now=timezone.now())
        messages.success(request, f"Connected Slack ({method.value}): you can now be paged by direct message.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("portal:profile")


@login_required
@require_POST
def method_send(request: HttpRequest, pk: int) -> HttpResponse:
    method = _own_method(request, pk)
    try:
        services.contact_method_verification_send(method=method)
        messages.success(request, f"Sent a new code to {method}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("portal:profile")


@login_required
@require_POST
def method_verify(request: HttpRequest, pk: int) -> HttpResponse:
    method = _own_method(request, pk)
    form = VerifyForm(request.POST)
    if form.is_valid():
        try:
            services.contact_method_verify(method=method, code=form.cleaned_data["code"])
            messages.success(request, f"{method} is verified and can now be paged.")
            return redirect("portal:profile")
        except ValidationError as exc:
            return _render(request, status=400, verify_errors={method.pk: exc.messages})
    return _render(request, status=400, verify_errors={method.pk: ["Enter the 6-digit code."]})


@login_required
@require_POST
def method_delete(request: HttpRequest, pk: int) -> HttpResponse:
    method = _own_method(request, pk)
    services.contact_method_delete(method=method)
    messages.success(request, f"Removed {method}.")
    return redirect("portal:profile")


@login_required
@require_POST
def rule_add(request: HttpRequest) -> HttpResponse:
    form = NotificationRuleForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            services.notification_rule_add(
                user=request.user,
                contact_method=form.cleaned_data["contact_method"],
                delay=form.delay,
                urgency=form.cleaned_data["urgency"],
            )
            messages.success(request, "Notification rule added.")
            return redirect("portal:profile")
        except ValidationError as exc:
            apply_errors(form, exc)
    return _render(request, status=400, rule_form=form)


@login_required
@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(NotificationRule, pk=pk, user=request.user)
    services.notification_rule_delete(rule=rule)
    messages.success(request, "Notification rule removed.")
    return redirect("portal:profile")


@login_required
@require_POST
def rule_move(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(NotificationRule, pk=pk, user=request.user)
    services.notification_rule_move(rule=rule, direction=-1 if request.POST.get("direction") == "up" else 1)
    return redirect("portal:profile")


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        now = timezone.now()
        try:
            token, raw = services.api_token_create(
                user=request.user, name=form.cleaned_data["name"], expires_at=now + form.lifetime, now=now
            )
            return _render(request, new_token=raw, new_token_expires_at=token.expires_at)
        except ValidationError as exc:
            apply_errors(form, exc)
    return _render(request, status=400, token_form=form)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.api_token_revoke(token=token)
    messages.success(request, f"Revoked token “{token.name}”. Anything using it is now refused.")
    return redirect("portal:profile")


@login_required
@require_POST
def notice_prefs(request: HttpRequest) -> HttpResponse:
    """Shift reminders, handover messages and roster-change notices: when and by which channel."""
    form = NotificationPreferenceForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            notification_preferences.notification_preference_set(
                user=request.user,
                reminder_lead_minutes=data["reminder_leads"],
                reminder_kinds=data["reminder_kinds"],
                handover_kinds=data["handover_kinds"],
                roster_change_kinds=data["roster_change_kinds"],
            )
        except ValidationError as exc:
            # The service names the model's field; the form shows the leads under its own.
            if hasattr(exc, "error_dict") and "reminder_lead_minutes" in exc.error_dict:
                exc.error_dict["reminder_leads"] = exc.error_dict.pop("reminder_lead_minutes")
            apply_errors(form, exc)
        else:
            messages.success(request, "Shift notice settings saved.")
            return redirect("portal:profile")
    return _render(request, status=400, notice_form=form)
