"""The one-click links of paging e-mails: GET confirms, POST acts (see escalations.delivery.email_links).

No sign-in: the signed link is the credential, and it acts only as the paged person.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from escalations.delivery.email_links import EmailLinkError, email_link_get, email_link_use


@require_http_methods(["GET", "POST"])
def email_action(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "POST":
            link, changed = email_link_use(token=token, now=timezone.now())
        else:
            link, changed = email_link_get(token=token), None
    except EmailLinkError as exc:
        return render(request, "delivery/email_action.html", {"error": str(exc)}, status=410)
    context = {"link": link, "incident": link.incident, "done": changed is not None, "changed": changed}
    response = render(request, "delivery/email_action.html", context)
    response["Cache-Control"] = "private, no-store"
    return response
