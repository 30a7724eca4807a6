"""The Now page: who is on call and what is open, for the teams you are in."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portal import selectors
from rotations import selectors as roster_selectors
from rotations.models import Membership

# ----------------------------------------------------------------------------------- Now


@login_required
def now(request: HttpRequest) -> HttpResponse:
    """The user's own teams first; staff also get a searchable, paginated grid of every team."""
    at = timezone.now()
    user = request.user
    teams = selectors.my_teams_get(user=user, limit=selectors.MY_TEAMS_ON_NOW + 1)
    more_teams = len(teams) > selectors.MY_TEAMS_ON_NOW
    teams = teams[: selectors.MY_TEAMS_ON_NOW]
    all_teams = selectors.teams_page_get(user=user, page=1) if user.is_staff else None
    shown = teams + (list(all_teams.object_list) if all_teams else [])
    oncall = roster_selectors.teams_oncall_rows_get(team_ids={t.pk for t in shown}, at=at) if shown else {}
    cards = selectors.team_cards_get(teams=list(all_teams.object_list), at=at, oncall=oncall) if all_teams else []
    # Staff outside any team watch every team's incidents; everyone else their own teams'.
    incident_teams = None if user.is_staff and not teams else Membership.objects.filter(user=user).values("team_id")
    shifts = roster_selectors.user_shift_rows_get(user=user, since=at, until=at + timedelta(days=30))
    return render(
        request,
        "portal/now.html",
        {
            "teams": [(t, oncall.get(t.pk, [])) for t in teams],
            "more_teams": more_teams,
            "all_teams": all_teams,
            "rows": cards,
            "incidents": selectors.my_open_incidents_get(user=user, team_ids=incident_teams),
            "next_shifts": shifts[:5],
            "now": at,
        },
    )
