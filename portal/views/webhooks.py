"""A team's outgoing webhooks: managers and staff only (the URLs and the delivery log are the team's
configuration). Every write goes through escalations.webhooks.services, the API's write path. The
signing secret is rendered once, in the answer to create and rotate, and never again."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from escalations.models import WebhookDelivery, WebhookSubscription
from escalations.webhooks import selectors, services
from escalations.webhooks.events import EVENT_TYPES
from portal.forms.common import apply_errors
from portal.forms.integrations import ConfirmForm
from portal.forms.webhooks import WebhookForm
from portal.models import User
from portal.permissions import can_manage_team
from portal.views.teams import _team_or_404
from rotations.models import Team

LOG_ROWS = 50


def _managed(request: HttpRequest, slug: str) -> Team:
    team = _team_or_404(request, slug)
    if not isinstance(request.user, User) or not can_manage_team(request.user, team):
        raise PermissionDenied("Only staff and this team's managers see and change its webhooks.")
    return team


def _of_team(team: Team, pk: int) -> WebhookSubscription:
    sub = selectors.subscriptions_get(team=team).filter(pk=pk).first()
    if sub is None:
        raise Http404("No such webhook in this team.")
    return sub


def _errors(exc: ValidationError) -> list[str]:
    return [m for msgs in exc.message_dict.values() for m in msgs] if hasattr(exc, "error_dict") else exc.messages


@login_required
def webhooks(request: HttpRequest, slug: str) -> HttpResponse:
    team = _managed(request, slug)
    return render(
        request,
        "portal/webhooks.html",
        {"team": team, "subscriptions": selectors.subscriptions_get(team=team), "event_types": EVENT_TYPES},
    )


@login_required
def webhook_create(request: HttpRequest, slug: str) -> HttpResponse:
    team = _managed(request, slug)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sub = services.subscription_create(team=team, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            return _detail_page(request, team, sub, secret=sub.secret, status=201)
    return render(
        request,
        "portal/form_page.html",
        {"title": "New webhook", "form": form, "submit": "Create webhook", "team": team},
        status=400 if form.errors else 200,
    )


def _detail_page(
    request: HttpRequest, team: Team, sub: WebhookSubscription, *, secret: str = "", status: int = 200
) -> HttpResponse:
    return render(
        request,
        "portal/webhook_detail.html",
        {
            "team": team,
            "sub": sub,
            "secret": secret,
            "event_types": [(key, EVENT_TYPES[key]) for key in sub.events if key in EVENT_TYPES],
            "deliveries": selectors.deliveries_get(subscription=sub)[:LOG_ROWS],
            "log_rows": LOG_ROWS,
        },
        status=status,
    )


@login_required
def webhook_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    return _detail_page(request, team, _of_team(team, pk))


@login_required
def webhook_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    sub = _of_team(team, pk)
    initial = {"url": sub.url, "events": list(sub.events), "description": sub.description}
    form = WebhookForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.subscription_update(subscription=sub, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Webhook saved.")
            return redirect("portal:webhook", slug=team.slug, pk=sub.pk)
    return render(
        request,
        "portal/form_page.html",
        {"title": "Edit webhook", "form": form, "submit": "Save", "team": team},
        status=400 if form.errors else 200,
    )


def _refused(request: HttpRequest, team: Team, sub: WebhookSubscription, exc: ValidationError) -> HttpResponse:
    for msg in _errors(exc):
        messages.error(request, msg)
    return _detail_page(request, team, sub, status=400)


@login_required
@require_POST
def webhook_enabled(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    sub = _of_team(team, pk)
    enabled = request.POST.get("enabled")
    if enabled not in ("0", "1"):
        return _refused(request, team, sub, ValidationError("Say whether to enable (1) or disable (0) it."))
    services.subscription_update(subscription=sub, actor=request.user, enabled=enabled == "1")
    messages.success(request, "Webhook enabled." if enabled == "1" else "Webhook disabled: nothing is sent.")
    return redirect("portal:webhook", slug=team.slug, pk=sub.pk)


@login_required
@require_POST
def webhook_secret_rotate(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    sub = _of_team(team, pk)
    if not ConfirmForm(request.POST).is_valid():
        return _refused(request, team, sub, ValidationError("Tick the box to confirm."))
    sub = services.subscription_secret_rotate(subscription=sub, actor=request.user)
    return _detail_page(request, team, sub, secret=sub.secret)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    sub = _of_team(team, pk)
    if not ConfirmForm(request.POST).is_valid():
        return _refused(request, team, sub, ValidationError("Tick the box to confirm: this cannot be undone."))
    services.subscription_delete(subscription=sub, actor=request.user)
    messages.success(request, "Webhook deleted with its delivery log.")
    return redirect("portal:webhooks", slug=team.slug)


@login_required
@require_POST
def webhook_ping(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    sub = _of_team(team, pk)
    try:
        services.subscription_ping(subscription=sub, actor=request.user)
    except ValidationError as exc:
        return _refused(request, team, sub, exc)
    messages.success(request, "Test event sent: its delivery shows in the log below in a moment.")
    return redirect(reverse("portal:webhook", args=[team.slug, sub.pk]) + "#h-log")


@login_required
@require_POST
def webhook_resend(request: HttpRequest, slug: str, pk: int, delivery_pk: int) -> HttpResponse:
    team = _managed(request, slug)
    sub = _of_team(team, pk)
    delivery = WebhookDelivery.objects.filter(subscription=sub, pk=delivery_pk).first()
    if delivery is None:
        raise Http404("No such delivery of this webhook.")
    try:
        services.delivery_resend(delivery=delivery, actor=request.user)
    except ValidationError as exc:
        return _refused(request, team, sub, exc)
    messages.success(request, "Sending it again now (same event id).")
    return redirect(reverse("portal:webhook", args=[team.slug, sub.pk]) + "#h-log")
