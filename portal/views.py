from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portal.permissions import user_team_ids
from rotations.models import Team
from rotations.selectors import teams_oncall_rows_get


@login_required
def now(request: HttpRequest) -> HttpResponse:
    teams = list(Team.objects.filter(pk__in=user_team_ids(user=request.user)).order_by("name"))
    rows = teams_oncall_rows_get(team_ids=[t.pk for t in teams], at=timezone.now())
    return render(request, "portal/now.html", {"teams": [(team, rows[team.pk]) for team in teams]})
