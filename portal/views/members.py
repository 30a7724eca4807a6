"""A team's member page: staff and the team's managers add people, change roles and remove members.

The guard rails (last manager, people the roster still depends on) live in rotations.services; this
module parses, calls them and renders.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal import selectors
from portal.forms.manage import MemberAddForm, MemberRoleForm
from portal.models import User
from portal.permissions import can_manage_members
from portal.views.teams import _team_or_404
from rotations.models import Membership, Team
from rotations.services import memberships

SEARCH_MIN_CHARS = 2
SEARCH_LIMIT = 10


def _managed_team(request: HttpRequest, slug: str) -> Team:
    team = _team_or_404(request, slug)
    if not can_manage_members(request.user, team):
        raise PermissionDenied("Only staff and this team's managers can change its members.")
    return team


def _member(team: Team, user_id: int) -> Membership:
    membership = Membership.objects.filter(team=team, user_id=user_id).select_related("user", "team").first()
    if membership is None:
        raise Http404("Not a member of this team.")
    return membership


def _search(team: Team, q: str) -> list[User]:
    """Active people not yet in the team whose name or e-mail contains `q` (at most SEARCH_LIMIT)."""
    if len(q) < SEARCH_MIN_CHARS:
        return []
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(full_name__icontains=q) | Q(email__icontains=q))
        .exclude(memberships__team=team)
        .order_by("full_name", "email")[:SEARCH_LIMIT]
    )


def _errors(exc: ValidationError) -> list[str]:
    return [m for msgs in exc.message_dict.values() for m in msgs] if hasattr(exc, "error_dict") else exc.messages


def _page(request: HttpRequest, team: Team, *, status: int = 200) -> HttpResponse:
    q = (request.GET.get("q") or "").strip()[:100]
    context = {
        "team": team,
        "q": q,
        "results": _search(team, q),
        "searched": len(q) >= SEARCH_MIN_CHARS,
        "min_chars": SEARCH_MIN_CHARS,
        "roles": Membership.Role.choices,
        "default_role": Membership.Role.ENGINEER,
    }
    if request.htmx and request.method == "GET":
        return render(request, "portal/_member_search.html", context)
    members = selectors.team_members_get(team=team)
    context["members"] = members
    context["manager_count"] = sum(1 for m in members if m.role == Membership.Role.MANAGER)
    return render(request, "portal/team_members.html", context, status=status)


@login_required
def team_members(request: HttpRequest, slug: str) -> HttpResponse:
    return _page(request, _managed_team(request, slug))


def _refused(request: HttpRequest, team: Team, exc: ValidationError) -> HttpResponse:
    for msg in _errors(exc):
        messages.error(request, msg)
    return _page(request, team, status=400)


@login_required
@require_POST
def team_member_add(request: HttpRequest, slug: str) -> HttpResponse:
    team = _managed_team(request, slug)
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _refused(request, team, ValidationError([e for errs in form.errors.values() for e in errs]))
    user, role = form.cleaned_data["user"], form.cleaned_data["role"]
    try:
        memberships.membership_create(team=team, user=user, role=role, actor=request.user)
    except ValidationError as exc:
        return _refused(request, team, exc)
    messages.success(request, f"Added {user.display_name} to {team.name} as {Membership.Role(role).label.lower()}.")
    return redirect("portal:team_members", slug=team.slug)


@login_required
@require_POST
def team_member_role(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    team = _managed_team(request, slug)
    membership = _member(team, user_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return _refused(request, team, ValidationError("Choose a role: team manager, engineer or viewer."))
    role = form.cleaned_data["role"]
    try:
        memberships.membership_update(membership=membership, role=role, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        return _refused(request, team, exc)
    messages.success(request, f"{membership.user.display_name} is now {Membership.Role(role).label.lower()}.")
    return redirect("portal:team_members", slug=team.slug)


@login_required
@require_POST
def team_member_remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    team = _managed_team(request, slug)
    membership = _member(team, user_id)
    try:
        memberships.membership_delete(membership=membership, actor=request.user, now=timezone.now())
    except ValidationError as exc:
        return _refused(request, team, exc)
    messages.success(request, f"Removed {membership.user.display_name} from {team.name}.")
    if membership.user_id == request.user.pk and not request.user.is_staff:
        return redirect("portal:teams")  # a manager who left the team can no longer see its page
    return redirect("portal:team_members", slug=team.slug)
