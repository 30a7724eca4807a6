"""The role matrix, in one place. Views, the API and the admin all ask these functions.

- staff: everything.
- team manager: their own teams' rosters, policies, integrations and incidents.
- engineer: works incidents of their teams; manages own exclusions, overrides they take part in,
  own profile.
- viewer: reads their teams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q

from rotations.models import Membership, Rotation, Team

if TYPE_CHECKING:
    from portal.models import User

MANAGER = "manager"
ENGINEER = "engineer"
VIEWER = "viewer"


def team_role_get(*, user: User, team: Team | int) -> str | None:
    if not user.is_authenticated:
        return None
    team_id = team if isinstance(team, int) else team.pk
    cache = getattr(user, "_backstop_roles", None)
    if cache is None:
        cache = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._backstop_roles = cache
    return cache.get(team_id)


def user_team_ids(*, user: User) -> set[int]:
    """Teams the user can see (all of them for staff)."""
    if not user.is_authenticated:
        return set()
    if user.is_staff:
        return set(Team.objects.values_list("pk", flat=True))
    return set(Membership.objects.filter(user=user).values_list("team_id", flat=True))


def can_view_team(user: User, team: Team | int) -> bool:
    return user.is_authenticated and (user.is_staff or team_role_get(user=user, team=team) is not None)


def can_manage_team(user: User, team: Team | int) -> bool:
    return user.is_authenticated and (user.is_staff or team_role_get(user=user, team=team) == MANAGER)


def can_work_incidents(user: User, team: Team | int) -> bool:
    return user.is_authenticated and (user.is_staff or team_role_get(user=user, team=team) in (MANAGER, ENGINEER))


def can_manage_exclusion_for(user: User, subject: User) -> bool:
    """Own exclusions; staff for anyone; a manager only if they manage *every* team the person belongs
    to or is rostered in: an exclusion reroutes all of those rosters, and adding someone to your own
    team must not give you a say over their other teams."""
    if not user.is_authenticated:
        return False
    if user.is_staff or user.pk == subject.pk:
        return True
    managed = set(Membership.objects.filter(user=user, role=MANAGER).values_list("team_id", flat=True))
    if not managed:
        return False
    affected = set(Membership.objects.filter(user=subject).values_list("team_id", flat=True))
    affected |= set(
        Rotation.objects.filter(Q(eras__participant_links__user=subject) | Q(overrides__user=subject)).values_list(
            "team_id", flat=True
        )
    )
    return bool(affected) and affected <= managed


def can_manage_override(user: User, *, team: Team | int, taker: User, replaced: User | None) -> bool:
    """Managers and staff for anyone; engineers only for overrides they take part in."""
    if can_manage_team(user, team):
        return True
    if team_role_get(user=user, team=team) != ENGINEER:
        return False
    return user.pk == taker.pk or (replaced is not None and user.pk == replaced.pk)


def is_staff(user: User) -> bool:
    return user.is_authenticated and user.is_staff


def can_manage_members(user: User, team: Team | int) -> bool:
    """Add people to a team, change their roles, remove them: the team's managers and staff (as the API)."""
    return can_manage_team(user, team)
