from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.permissions import user_team_ids
from rotations.models import Team


@login_required
def now(request: HttpRequest) -> HttpResponse:
    teams = Team.objects.filter(pk__in=user_team_ids(user=request.user)).order_by("name")
    return render(request, "portal/now.html", {"teams": teams})
