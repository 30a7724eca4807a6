"""Staff: the System page — can Backstop page right now, and does the outside world know?"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from escalations.monitoring.selectors import system_status_get
from escalations.phone.views import staff_required


@staff_required
def system(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/system.html", {"status": system_status_get(now=timezone.now())})
