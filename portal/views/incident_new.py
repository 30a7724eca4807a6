"""Open an incident by hand: page the on-call of a team (PagerDuty's "New Incident").

The same service as alerts and the API (incident_trigger, source manual). Who may: the team's
engineers and managers, and staff; the team comes in the body, so it is checked like any other id:
a team the user cannot see or cannot page is a field error, and nothing is opened.
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from escalations.incidents import services
from escalations.models import Incident, TimelineEvent
from portal import selectors
from portal.forms.incident_new import IncidentNewForm
from portal.models import User
from portal.permissions import can_work_incidents


def _me(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied("Sign in first.")
    return request.user


def _form(request: HttpRequest, user: User, data=None) -> IncidentNewForm:
    choices = None if user.is_staff else [(t.slug, t.name) for t in selectors.paging_teams_get(user=user)]
    initial = {"team": request.GET.get("team", "")[:100], "nonce": secrets.token_urlsafe(12)}
    return IncidentNewForm(data, initial=initial, team_choices=choices)


@login_required
def incident_new(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    if request.method != "POST":
        return _page(request, _form(request, user))
    form = _form(request, user, request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.cleaned_data
    team = selectors.visible_team_get(user=user, key=data["team"].strip())
    if team is None:
        form.add_error("team", "No such team.")
        return _page(request, form, status=400)
    if not can_work_incidents(user, team):
        form.add_error("team", f"Your role on {team.name} cannot page it; ask one of its engineers or managers.")
        return _page(request, form, status=400)
    result = services.incident_trigger(
        team=team,
        title=data["title"],
        details=data["details"],
        severity=data["severity"],
        urgency=data["urgency"],
        source=Incident.Source.MANUAL,
        dedup_key=f"portal:{data['nonce']}" if data["nonce"] else "",
        actor=user,
        via=TimelineEvent.Via.WEB,
    )
    if result.created:
        messages.success(request, f"#{result.incident.pk} opened: {team.name}'s on-call is being paged.")
    return redirect("portal:incident", pk=result.incident.pk)


def _page(request: HttpRequest, form: IncidentNewForm, status: int = 200) -> HttpResponse:
    return render(request, "portal/incident_new.html", {"form": form}, status=status)
