"""Portal pages. Views parse the request, call a selector or service, and render."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.parsing import small_uint
from escalations.incidents import services
from escalations.incidents.selectors import CHANGE_LOOKBACK, incident_recent_changes_get
from escalations.models import EscalationPolicy, Incident, TimelineEvent
from portal import selectors
from portal.models import User
from portal.permissions import can_view_team, can_work_incidents
from rotations.models import Membership

WEB = TimelineEvent.Via.WEB


SNOOZE_CHOICES = {
    "15": ("15 minutes", timedelta(minutes=15)),
    "60": ("1 hour", timedelta(hours=1)),
    "240": ("4 hours", timedelta(hours=4)),
}


# ----------------------------------------------------------------------------- incidents


@login_required
def incidents(request: HttpRequest) -> HttpResponse:
    filterset, page = selectors.incident_list_get(user=request.user, params=request.GET, page=request.GET.get("page"))
    try:
        seen = int(request.GET.get("seen", ""))
    except ValueError:
        seen = None
    newest = max((i.pk for i in page.object_list), default=seen or 0)
    context = {"filter": filterset, "page": page, "seen": seen, "newest": max(newest, seen or 0)}
    template = "portal/_incident_list.html" if request.htmx else "portal/incidents.html"
    return render(request, template, context)


def _live_version(request: HttpRequest, pk: int) -> str:
    """The incident's live version, after the same visibility check as the detail page (404 otherwise).

    Taken before the incident is loaded for rendering, so what is shown is never older than the
    version the page polls with (a change in between is fetched again by the next poll).
    """
    try:
        team_id, version = selectors.incident_version_get(pk=pk)
    except Incident.DoesNotExist:
        raise Http404("No such incident.") from None
    if not can_view_team(request.user, team_id):
        raise Http404("No such incident.")
    return version


def _visible_incident(request: HttpRequest, pk: int) -> Incident:
    try:
        incident = selectors.incident_get(pk=pk)
    except Incident.DoesNotExist:
        raise Http404("No such incident.") from None
    if not can_view_team(request.user, incident.team_id):
        raise Http404("No such incident.")
    return incident


def _detail_context(request: HttpRequest, incident: Incident, version: str) -> dict:
    """What the detail page and its live regions show."""
    can_act = can_work_incidents(request.user, incident.team_id)
    members = []
    if can_act and incident.is_open:
        members = [m.user for m in selectors.team_members_get(team=incident.team) if m.role != Membership.Role.VIEWER]
    return {
        "incident": incident,
        "timeline": selectors.incident_timeline_get(incident=incident),
        "pages": selectors.incident_pages_get(incident=incident),
        "engine_state": selectors.engine_state_describe(incident=incident),
        "can_act": can_act,
        "members": members,
        "assignee_ids": {u.pk for u in incident.assignees.all()},
        "call": selectors.incident_call_get(incident=incident),
        "policies": selectors.team_policy_choices_get(team_id=incident.team_id) if can_act and incident.is_open else [],
        "snooze_choices": [(k, label) for k, (label, _) in SNOOZE_CHOICES.items()],
        "version": version,
    }


def _panel_context(request: HttpRequest, incident: Incident, version: str) -> dict:
    """The whole panel: the live regions plus what never changes once opened (recent changes)."""
    return _detail_context(request, incident, version) | {
        "recent_changes": incident_recent_changes_get(incident=incident),
        "change_lookback_minutes": int(CHANGE_LOOKBACK.total_seconds() // 60),
    }


@login_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    version = _live_version(request, pk)
    incident = selectors.incident_get(pk=pk)
    template = "portal/_incident_panel.html" if request.htmx else "portal/incident_detail.html"
    return render(request, template, _panel_context(request, incident, version))


@login_required
def incident_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The detail page's live regions (status, engine state, actions, assignees, emergency call, timeline,
    pages).

    Polled by the page with the version it shows: 204 (htmx swaps nothing) after one query when the
    incident has not changed; 286 would stop the polling for good, which is not what "no news" means.
    """
    version = _live_version(request, pk)
    if request.GET.get("v") == version:
        return HttpResponse(status=204)
    incident = selectors.incident_get(pk=pk)
    return render(request, "portal/_incident_live.html", _detail_context(request, incident, version))


def _acted(request: HttpRequest, incident: Incident, *, note_saved: bool = False, status: int = 200) -> HttpResponse:
    """The refreshed panel (htmx) or a redirect to the page; `status` 400 marks rejected input,
    with the reason among the messages shown on the page."""
    if request.htmx or status >= 400:
        _, version = selectors.incident_version_get(pk=incident.pk)
        incident = selectors.incident_get(pk=incident.pk)
        context = _panel_context(request, incident, version) | {"oob": bool(request.htmx), "note_saved": note_saved}
        template = "portal/_incident_panel.html" if request.htmx else "portal/incident_detail.html"
        return render(request, template, context, status=status)
    return redirect("portal:incident", pk=incident.pk)


def _workable_incident(request: HttpRequest, pk: int) -> Incident:
    incident = _visible_incident(request, pk)
    if not can_work_incidents(request.user, incident.team_id):
        raise PermissionDenied("Viewers can see incidents but not act on them.")
    return incident


@login_required
@require_POST
def incident_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _workable_incident(request, pk)
    if services.incident_acknowledge(incident=incident, by=request.user, via=WEB):
        messages.success(request, f"Acknowledged #{incident.pk}. Pending pages were canceled.")
    else:
        messages.info(request, f"#{incident.pk} was already {incident.get_status_display().lower()}.")
    return _acted(request, incident)


@login_required
@require_POST
def incident_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _workable_incident(request, pk)
    note = request.POST.get("note", "").strip()
    if services.incident_resolve(incident=incident, by=request.user, via=WEB, note=note):
        messages.success(request, f"Resolved #{incident.pk}.")
    else:
        messages.info(request, f"#{incident.pk} was already resolved.")
    return _acted(request, incident)


@login_required
@require_POST
def incident_escalate(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _workable_incident(request, pk)
    if services.incident_escalate(incident=incident, by=request.user, via=WEB):
        messages.success(request, f"Escalated #{incident.pk} to the next step.")
    else:
        messages.error(request, "Cannot escalate: the incident is resolved, suppressed or has no policy steps.")
    return _acted(request, incident)


@login_required
@require_POST
def incident_reassign(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _workable_incident(request, pk)
    wanted = {n for n in map(small_uint, request.POST.getlist("users")) if n is not None}
    users = list(User.objects.filter(pk__in=wanted).order_by("full_name", "email"))
    refused = "Choose one or more engineers or managers of this team to reassign to."
    if not wanted or len(users) != len(wanted):
        messages.error(request, refused)
        return _acted(request, incident)
    try:
        services.incident_reassign(incident=incident, by=request.user, to_users=users, via=WEB)
    except ValidationError as exc:
        messages.error(request, f"{refused} {' '.join(exc.messages)}")
        return _acted(request, incident)
    messages.success(request, "Reassigned to " + ", ".join(u.display_name for u in users) + ".")
    return _acted(request, incident)


@login_required
@require_POST
def incident_policy(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _workable_incident(request, pk)
    policy_id = small_uint(request.POST.get("policy", ""))
    policy = EscalationPolicy.objects.filter(pk=policy_id, team_id=incident.team_id).first() if policy_id else None
    if policy is None:
        messages.error(request, "Choose one of this team's escalation policies.")
        return _acted(request, incident, status=400)
    try:
        services.incident_policy_change(incident=incident, policy=policy, by=request.user, via=WEB)
    except ValueError as exc:
        messages.error(request, str(exc))
        return _acted(request, incident, status=400)
    messages.success(request, f"Moved #{incident.pk} to {policy.name}: escalation restarts at step 1.")
    return _acted(request, incident)


@login_required
@require_POST
def incident_note(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _workable_incident(request, pk)
    try:
        services.incident_note_add(incident=incident, by=request.user, text=request.POST.get("text", ""), via=WEB)
    except ValueError as exc:
        messages.error(request, str(exc))
        return _acted(request, incident)
    messages.success(request, "Note added.")
    return _acted(request, incident, note_saved=True)


@login_required
@require_POST
def incident_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _workable_incident(request, pk)
    choice = SNOOZE_CHOICES.get(request.POST.get("minutes", ""))
    if choice is None:
        messages.error(request, "Snooze for 15 minutes, 1 hour or 4 hours.")
        return _acted(request, incident)
    label, delta = choice
    at = timezone.now()
    try:
        services.incident_snooze(incident=incident, by=request.user, until=at + delta, via=WEB, now=at)
        messages.success(request, f"Snoozed for {label}.")
    except ValueError as exc:
        messages.error(request, str(exc))
    return _acted(request, incident)
