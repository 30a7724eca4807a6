"""A team's integrations, maintenance windows and heartbeats.

Everyone in the team reads the list (kinds, state, last event and counts); the keys, ping URLs and the
ready-made sender examples are shown only to the team's managers and staff, who also create, rotate,
disable and delete. Every write goes through escalations.intake.services (the API's and the admin's
write path); the test event goes through the inbox like a real one (escalations.intake.probe).
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from escalations.intake import probe
from escalations.intake import selectors as intake_selectors
from escalations.intake import services as intake_services
from escalations.models import Heartbeat, Integration, MaintenanceWindow
from portal.forms.common import apply_errors
from portal.forms.integrations import ConfirmForm, HeartbeatForm, IntegrationForm, MaintenanceWindowForm
from portal.models import User
from portal.permissions import can_manage_team
from portal.views.teams import _team_or_404
from rotations.models import Team

PROBE_TOKEN_LENGTH = 32


def _user(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied("Sign in first.")
    return request.user


def _managed(request: HttpRequest, slug: str) -> Team:
    team = _team_or_404(request, slug)
    if not can_manage_team(_user(request), team):
        raise PermissionDenied("Only staff and this team's managers can change its integrations.")
    return team


def _of_team(model, team: Team, pk: int):
    obj = model.objects.filter(team=team, pk=pk).select_related("team").first()
    if obj is None:
        raise Http404("Not found in this team.")
    return obj


def _errors(exc: ValidationError) -> list[str]:
    return [m for msgs in exc.message_dict.values() for m in msgs] if hasattr(exc, "error_dict") else exc.messages


def _list_url(team: Team) -> str:
    return reverse("portal:integrations", args=[team.slug])


# ------------------------------------------------------------------------------------------ list


def _heartbeat_ping_url(heartbeat: Heartbeat) -> str:
    return settings.PUBLIC_BASE_URL + reverse("intake:heartbeat", args=[heartbeat.token])


@login_required
def integrations(request: HttpRequest, slug: str) -> HttpResponse:
    return _list_page(request, _team_or_404(request, slug))


def _list_page(request: HttpRequest, team: Team, *, status: int = 200) -> HttpResponse:
    now = timezone.now()
    can_manage = can_manage_team(_user(request), team)
    heartbeats = [
        {
            "hb": hb,
            "state": intake_selectors.heartbeat_state(heartbeat=hb, now=now),
            "ping_url": _heartbeat_ping_url(hb) if can_manage else None,
        }
        for hb in intake_selectors.heartbeats_get(team=team)
    ]
    return render(
        request,
        "portal/integrations.html",
        {
            "team": team,
            "can_manage": can_manage,
            "rows": intake_selectors.integrations_activity_get(team=team, now=now),
            "windows": intake_selectors.maintenance_windows_get(team=team, now=now),
            "heartbeats": heartbeats,
            "now": now,
        },
        status=status,
    )


# ---------------------------------------------------------------------------------- integrations


def _form_page(request: HttpRequest, *, team: Team, form, title: str, submit: str) -> HttpResponse:
    return render(
        request,
        "portal/form_page.html",
        {"title": title, "form": form, "submit": submit, "team": team},
        status=400 if form.errors else 200,
    )


@login_required
def integration_create(request: HttpRequest, slug: str) -> HttpResponse:
    team = _managed(request, slug)
    form = IntegrationForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        try:
            integration = intake_services.integration_create(team=team, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Created {integration.name}. Copy its URL and key into the sender.")
            return redirect("portal:integration", slug=team.slug, pk=integration.pk)
    return _form_page(request, team=team, form=form, title="New integration", submit="Create integration")


def _examples(integration: Integration) -> list[tuple[str, str]]:
    """(title, text) of ready-made sender configurations for this integration."""
    base = settings.PUBLIC_BASE_URL
    key = integration.key
    sample = {"summary": "Disk full on db-1", "severity": "critical"}
    if integration.kind == Integration.Kind.PAGERDUTY:
        url = base + reverse("intake:pagerduty-enqueue")
        event = {"routing_key": key, "event_action": "trigger", "payload": {**sample, "source": "db-1"}}
        return [
            (
                "curl",
                f"curl -sS -X POST {url} \\\n  -H 'Content-Type: application/json' \\\n  -d '{json.dumps(event)}'",
            ),
            (
                "Python (pdpyras)",
                "from pdpyras import EventsAPISession\n\n"
                f'session = EventsAPISession("{key}")\n'
                f'session.url = "{base}/integrations/pagerduty"  # posts to …/v2/enqueue\n'
                'dedup_key = session.trigger("Disk full on db-1", "db-1", severity="critical")\n'
                "session.resolve(dedup_key)",
            ),
        ]
    if integration.kind == Integration.Kind.ALERTMANAGER:
        url = base + reverse("intake:alertmanager", args=[key])
        name = f"backstop-{integration.team.slug}"
        return [
            (
                "alertmanager.yml",
                f"receivers:\n  - name: {name}\n    webhook_configs:\n      - url: {url}\n"
                f"        send_resolved: true\n\nroute:\n  receiver: {name}",
            )
        ]
    if integration.kind == Integration.Kind.GENERIC:
        url = base + reverse("intake:generic", args=[key])
        body = {**sample, "dedup_key": "db-1-disk"}
        resolve = {"action": "resolve", "dedup_key": "db-1-disk"}
        return [
            (
                "curl",
                f"curl -sS -X POST {url} \\\n  -H 'Content-Type: application/json' \\\n  -d '{json.dumps(body)}'\n\n"
                f"# resolve it\ncurl -sS -X POST {url} \\\n  -H 'Content-Type: application/json' \\\n"
                f"  -d '{json.dumps(resolve)}'",
            )
        ]
    return []


def _endpoint(integration: Integration) -> str | None:
    base = settings.PUBLIC_BASE_URL
    if integration.kind == Integration.Kind.PAGERDUTY:
        return base + reverse("intake:pagerduty-enqueue")
    if integration.kind == Integration.Kind.ALERTMANAGER:
        return base + reverse("intake:alertmanager", args=[integration.key])
    if integration.kind == Integration.Kind.GENERIC:
        return base + reverse("intake:generic", args=[integration.key])
    return None


def _probe_token(request: HttpRequest) -> str:
    token = (request.GET.get("probe") or "")[:PROBE_TOKEN_LENGTH]
    return token if len(token) == PROBE_TOKEN_LENGTH and token.isalnum() else ""


@login_required
def integration_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    return _detail_page(request, team, _of_team(Integration, team, pk))


def _detail_page(request: HttpRequest, team: Team, integration: Integration, *, status: int = 200) -> HttpResponse:
    token = _probe_token(request)
    return render(
        request,
        "portal/integration_detail.html",
        {
            "team": team,
            "integration": integration,
            "endpoint": _endpoint(integration),
            "examples": _examples(integration),
            "probe_token": token,
            "probe_alert": _probe_alert(integration, token) if token else None,
            "heartbeat_kind": integration.kind == Integration.Kind.HEARTBEAT,
        },
        status=status,
    )


def _probe_alert(integration: Integration, token: str):
    return intake_selectors.probe_alert_get(
        integration=integration, dedup_key=probe.probe_dedup_key(integration=integration, token=token)
    )


@login_required
def integration_probe_status(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The test event's cell, polled by htmx until the drain has applied it."""
    team = _managed(request, slug)
    integration = _of_team(Integration, team, pk)
    token = _probe_token(request)
    if not token:
        raise Http404("No test event named.")
    context = {
        "team": team,
        "integration": integration,
        "probe_token": token,
        "probe_alert": _probe_alert(integration, token),
    }
    return render(request, "portal/_integration_probe.html", context)


@login_required
@require_POST
def integration_probe(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    integration = _of_team(Integration, team, pk)
    try:
        token = probe.integration_probe_send(integration=integration, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        return _refused_detail(request, team, integration, exc)
    messages.success(request, "Test event sent: it opens an incident in a moment (watch below). Resolve it after.")
    url = reverse("portal:integration", args=[team.slug, integration.pk])
    return redirect(f"{url}?probe={token}")


@login_required
@require_POST
def integration_enabled(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Disable or enable (`enabled` = 1 or 0): a disabled integration refuses events with a clear answer."""
    team = _managed(request, slug)
    integration = _of_team(Integration, team, pk)
    enabled = request.POST.get("enabled")
    if enabled not in ("0", "1"):
        return _refused_list(request, team, ValidationError("Say whether to enable (1) or disable (0) it."))
    intake_services.integration_update(
        integration=integration,
        actor=request.user,
        name=integration.name,
        kind=integration.kind,
        enabled=enabled == "1",
        policy=integration.policy,
    )
    messages.success(request, f"{integration.name} {'enabled' if enabled == '1' else 'disabled'}.")
    return redirect(_list_url(team))


def _refused_list(request: HttpRequest, team: Team, exc: ValidationError) -> HttpResponse:
    for msg in _errors(exc):
        messages.error(request, msg)
    return _list_page(request, team, status=400)


def _refused_detail(request: HttpRequest, team: Team, integration: Integration, exc: ValidationError) -> HttpResponse:
    for msg in _errors(exc):
        messages.error(request, msg)
    return _detail_page(request, team, integration, status=400)


NOT_CONFIRMED = ValidationError("Tick the box to confirm: this cannot be undone.")


def _confirmed(request: HttpRequest) -> bool:
    return ConfirmForm(request.POST).is_valid()


@login_required
@require_POST
def integration_key_rotate(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    integration = _of_team(Integration, team, pk)
    if not _confirmed(request):
        return _refused_detail(request, team, integration, NOT_CONFIRMED)
    intake_services.integration_key_rotate(integration=integration, actor=request.user)
    messages.success(request, "New key made: the old one no longer works. Update every sender.")
    return redirect("portal:integration", slug=team.slug, pk=integration.pk)


@login_required
@require_POST
def integration_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    integration = _of_team(Integration, team, pk)
    if not _confirmed(request):
        return _refused_detail(request, team, integration, NOT_CONFIRMED)
    intake_services.integration_delete(integration=integration, actor=request.user)
    messages.success(request, f"Deleted {integration.name}.")
    return redirect(_list_url(team))


# ---------------------------------------------------------------------------- maintenance windows


@login_required
def window_create(request: HttpRequest, slug: str) -> HttpResponse:
    team = _managed(request, slug)
    initial = None
    if request.method != "POST":
        start = timezone.localtime().replace(second=0, microsecond=0)
        initial = {"start": start, "end": start + timedelta(hours=1)}
    form = MaintenanceWindowForm(request.POST or None, team=team, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            intake_services.maintenance_window_create(team=team, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Maintenance window saved: alerts in it open incidents that page nobody.")
            return redirect(_list_url(team))
    return _form_page(request, team=team, form=form, title="New maintenance window", submit="Save window")


@login_required
@require_POST
def window_end(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    window = _of_team(MaintenanceWindow, team, pk)
    try:
        intake_services.maintenance_window_end(window=window, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        return _refused_list(request, team, exc)
    messages.success(request, "Maintenance window ended: alerts page again.")
    return redirect(_list_url(team))


@login_required
@require_POST
def window_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    window = _of_team(MaintenanceWindow, team, pk)
    intake_services.maintenance_window_delete(window=window, actor=request.user)
    messages.success(request, "Maintenance window deleted.")
    return redirect(_list_url(team))


# ------------------------------------------------------------------------------------- heartbeats


@login_required
def heartbeat_create(request: HttpRequest, slug: str) -> HttpResponse:
    team = _managed(request, slug)
    form = HeartbeatForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            heartbeat = intake_services.heartbeat_create(
                team=team,
                actor=request.user,
                name=data["name"],
                interval=timedelta(minutes=data["interval_minutes"]),
                grace=timedelta(minutes=data["grace_minutes"]),
                integration=data["integration"],
            )
        except ValidationError as exc:
            renamed = {"interval": "interval_minutes", "grace": "grace_minutes"}
            if hasattr(exc, "error_dict"):
                exc = ValidationError({renamed.get(k, k): v for k, v in exc.message_dict.items()})
            apply_errors(form, exc)
        else:
            messages.success(request, f"Heartbeat {heartbeat.name} created: ping its URL from the job.")
            return redirect(_list_url(team))
    return _form_page(request, team=team, form=form, title="New heartbeat", submit="Create heartbeat")


@login_required
@require_POST
def heartbeat_token_rotate(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    heartbeat = _of_team(Heartbeat, team, pk)
    if not _confirmed(request):
        return _refused_list(request, team, NOT_CONFIRMED)
    intake_services.heartbeat_token_rotate(heartbeat=heartbeat, actor=request.user)
    messages.success(request, f"New ping URL for {heartbeat.name}: the old one no longer works.")
    return redirect(_list_url(team))


@login_required
@require_POST
def heartbeat_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _managed(request, slug)
    heartbeat = _of_team(Heartbeat, team, pk)
    if not _confirmed(request):
        return _refused_list(request, team, NOT_CONFIRMED)
    intake_services.heartbeat_delete(heartbeat=heartbeat, actor=request.user)
    messages.success(request, f"Deleted heartbeat {heartbeat.name}.")
    return redirect(_list_url(team))
