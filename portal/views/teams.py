"""Teams, the roster calendar, and my schedule (exclusions, overrides, iCal)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config.parsing import small_uint
from escalations.incidents.selectors import CHANGE_LOOKBACK, incidents_open_count_by_team, team_timeline_get
from escalations.models import Integration
from portal import selectors
from portal.forms.common import apply_errors
from portal.forms.roster import ExclusionForm, OverrideForm, SwapRequestForm
from portal.models import User
from portal.permissions import (
    can_manage_exclusion_for,
    can_manage_override,
    can_manage_team,
    can_view_team,
    can_work_incidents,
)
from rotations import roster_health
from rotations import selectors as roster_selectors
from rotations.ical import MAX_ALARM_MINUTES
from rotations.models import AuditEntry, Exclusion, Handover, Rotation, Team
from rotations.services import exclusions, overrides, swaps
from rotations.services import teams as services_teams

TEAM_OPTIONS = 20


def _team_or_404(request: HttpRequest, slug: str) -> Team:
    team = get_object_or_404(Team, slug=slug)
    if not can_view_team(request.user, team):
        raise Http404("No such team.")
    return team


@login_required
def teams(request: HttpRequest) -> HttpResponse:
    """Visible teams, a page at a time, searchable by name (htmx swaps the grid as you type)."""
    q = request.GET.get("q", "").strip()[:100]
    page = selectors.teams_page_get(user=request.user, q=q, page=request.GET.get("page"))
    context = {
        "page": page,
        "q": q,
        "rows": selectors.team_cards_get(teams=list(page.object_list), at=timezone.now()),
        "can_create": request.user.is_staff,
        # The grid is also embedded in staff's "Now": paging there must not move the address bar.
        "push_url": not request.htmx or (request.htmx.current_url_abs_path or "").startswith(reverse("portal:teams")),
    }
    template = "portal/_team_grid.html" if request.htmx else "portal/teams.html"
    return render(request, template, context)


@login_required
def team_options(request: HttpRequest) -> HttpResponse:
    """<option>s of up to 20 visible teams matching ?q=, for the team pickers' <datalist> (htmx)."""
    # The pickers send their own field name (team=...); a plain search sends q=.
    q = (request.GET.get("q") or request.GET.get("team") or "").strip()[:100]
    teams = selectors.teams_search(user=request.user, q=q)[:TEAM_OPTIONS]
    return render(request, "portal/_team_options.html", {"teams": teams})


def _handover_log(team: Team) -> list:
    return list(Handover.objects.filter(team=team).order_by("-at")[:10])


def _integrations(team: Team) -> list:
    return list(Integration.objects.filter(team=team).order_by("pk")[:50])


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    at = timezone.now()
    oncall = roster_selectors.teams_oncall_rows_get(team_ids=[team.pk], at=at)
    rotations = list(
        Rotation.objects.filter(team=team).prefetch_related("eras__participant_links__user").order_by("name")
    )
    for rotation in rotations:
        eras = [e for e in rotation.eras.all() if e.effective_from <= at]
        era = eras[-1] if eras else next(iter(rotation.eras.all()), None)
        rotation.current_era = era
        rotation.people = [link.user for link in era.participant_links.all()] if era else []
    members = selectors.team_members_get(team=team)
    return render(
        request,
        "portal/team_detail.html",
        {
            "team": team,
            "members": members,
            "problems": _roster_problems(team, at, members) if rotations else [],
            "timeline": team_timeline_get(team=team, now=at),
            "change_lookback_minutes": int(CHANGE_LOOKBACK.total_seconds() // 60),
            "rotations": rotations,
            "policies": selectors.team_policies_get(team=team),
            "oncall": oncall.get(team.pk, []),
            "audit": list(AuditEntry.objects.filter(team=team).select_related("actor")[:15]),
            "handovers": _handover_log(team),
            "integrations": _integrations(team),
            "can_manage": can_manage_team(request.user, team),
            "can_work": can_work_incidents(request.user, team),
            "team_ical_url": request.build_absolute_uri(reverse("ical:team", kwargs={"token": team.ical_token})),
            "open_incidents": incidents_open_count_by_team([team.pk]).get(team.pk, 0),
        },
    )


def _roster_problems(team: Team, at, members) -> list[dict]:
    """Open gaps and on-call-during-time-off, each with the person's name (for the team page's list)."""
    names = {m.user_id: m.user.display_name for m in members}
    problems = roster_health.roster_problems_get(team=team, now=at)
    missing = {p.user_id for p in problems if p.user_id and p.user_id not in names}
    if missing:
        names.update((u.pk, u.display_name) for u in User.objects.filter(pk__in=missing))
    return [{"p": p, "name": names.get(p.user_id or 0, "")} for p in problems]


# ------------------------------------------------------------------------------ schedule


def _ical_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("ical:user", kwargs={"token": request.user.ical_token}))


def _ical_alarm(request: HttpRequest) -> int:
    """Minutes before each shift for the feed's own reminder (?alarm=): asked for, else 15."""
    minutes = small_uint(request.GET.get("alarm"))
    return minutes if minutes is not None and minutes <= MAX_ALARM_MINUTES else 15


def _override_scope(request: HttpRequest, data) -> Team | None:
    """The team the override pickers are narrowed to (?team= slug or id), None for the user's own teams."""
    key = str(data.get("team", "")).strip()[:100]
    return selectors.visible_team_get(user=request.user, key=key) if key else None


def _schedule_render(request: HttpRequest, *, exclusion_form=None, override_form=None, swap_form=None, status=200):
    at = timezone.now()
    shifts = roster_selectors.user_shift_rows_get(user=request.user, since=at, until=at + timedelta(days=30))

    scope = _override_scope(request, request.POST if override_form is not None else request.GET)
    return render(
        request,
        "portal/schedule.html",
        {
            "shifts": shifts,
            "exclusion_form": exclusion_form or ExclusionForm(),
            "override_form": override_form or OverrideForm(user=request.user, team=scope),
            "scope_team": scope,
            "exclusions": list(Exclusion.objects.filter(user=request.user, end__gt=at).order_by("start")),
            "overrides": selectors.my_overrides_get(user=request.user, after=at),
            "ical_url": _ical_url(request),
            "ical_alarm": _ical_alarm(request),
            "swap_form": swap_form or SwapRequestForm(user=request.user),
            "swaps_incoming": selectors.swaps_get(user=request.user, role="taker", after=at),
            "swaps_outgoing": selectors.swaps_get(user=request.user, role="requester", after=at),
            "max_alarm": MAX_ALARM_MINUTES,
        },
        status=status,
    )


@login_required
def schedule(request: HttpRequest) -> HttpResponse:
    return _schedule_render(request)


@login_required
@require_POST
def user_ical_rotate(request: HttpRequest) -> HttpResponse:
    """A new personal feed link; the old one stops working at once (it may have leaked)."""
    services_teams.user_ical_token_rotate(user=request.user, actor=request.user)
    messages.success(request, "New calendar link made; the old one no longer works. Update your calendar app.")
    return redirect("portal:schedule")


@login_required
@require_POST
def team_ical_rotate(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    if not can_manage_team(request.user, team):
        raise PermissionDenied("Only staff and this team's managers can change the team's calendar link.")
    services_teams.team_ical_token_rotate(team=team, actor=request.user)
    messages.success(request, f"New calendar link for {team.name}; the old one no longer works.")
    return redirect("portal:team", slug=team.slug)


@login_required
@require_POST
def exclusion_create(request: HttpRequest) -> HttpResponse:
    form = ExclusionForm(request.POST)
    if form.is_valid():
        subject = form.cleaned_data.get("user") or request.user
        if not can_manage_exclusion_for(request.user, subject):
            raise PermissionDenied("You can only add exclusions for yourself or members of teams you manage.")
        try:
            data = form.cleaned_data
            exclusions.exclusion_create(
                user=subject,
                start=data["start"],
                end=data["end"],
                kind=data["kind"],
                reason=data["reason"],
                actor=request.user,
            )
            messages.success(request, "Time off saved. The roster routes around it.")
            return redirect(_safe_next(request))
        except ValidationError as exc:
            apply_errors(form, exc)
    return _schedule_render(request, exclusion_form=form, status=400)


@login_required
@require_POST
def override_create(request: HttpRequest) -> HttpResponse:
    form = OverrideForm(request.POST, user=request.user, team=_override_scope(request, request.POST))
    if form.is_valid():
        data = form.cleaned_data
        taker = data.get("taker") or request.user
        rotation = data["rotation"]
        replaced = data.get("replaces_user")
        if not can_manage_override(request.user, team=rotation.team_id, taker=taker, replaced=replaced):
            raise PermissionDenied("You can only create overrides you take part in, unless you manage the team.")
        if taker.pk != request.user.pk and not can_manage_team(request.user, rotation.team_id):
            # Giving one's shift away needs the taker's consent: it becomes a swap request they answer.
            return _override_as_swap(request, form, taker=taker)
        try:
            overrides.override_create(
                rotation=rotation,
                user=taker,
                start=data["start"],
                end=data["end"],
                position=data.get("position") or None,
                replaces_user=data.get("replaces_user"),
                reason=data.get("reason", ""),
                actor=request.user,
            )
            messages.success(request, f"{taker.display_name} has the pager for that window.")
            return redirect(_safe_next(request))
        except ValidationError as exc:
            apply_errors(form, exc)
    return _schedule_render(request, override_form=form, status=400)


def _override_as_swap(request: HttpRequest, form: OverrideForm, *, taker) -> HttpResponse:
    data = form.cleaned_data
    try:
        swaps.swap_request_create(
            rotation=data["rotation"],
            requester=request.user,
            taker=taker,
            start=data["start"],
            end=data["end"],
            reason=data.get("reason", ""),
            now=timezone.now(),
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return _schedule_render(request, override_form=form, status=400)
    messages.success(
        request, f"Asked {taker.display_name} to take that window; your shifts stay yours until they accept."
    )
    return redirect(_safe_next(request))


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("portal:schedule")
