"""Staff page: import on-call configuration from PagerDuty (token or export file), dry run first, then apply."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from portal.importers.services import SOURCES, export_fetch, export_load, import_run
from portal.permissions import is_staff

# The export read for a dry run is kept this long for the apply that follows, so the token is asked once
# and what is applied is exactly what the dry run showed.
_KEEP_SECONDS = 3600
_MAX_FILE_BYTES = 20 * 1024 * 1024


def _require_staff(request: HttpRequest) -> None:
    if not is_staff(request.user):  # type: ignore[arg-type]
        raise PermissionDenied("Only staff can import on-call configuration.")


def _key(request: HttpRequest, ticket: str) -> str:
    return f"portal:import:{request.user.pk}:{ticket}"


def _page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, "portal/import.html", {"sources": sorted(SOURCES), **context}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: read the source (the vendor's API or an uploaded export) and show the dry run."""
    _require_staff(request)
    if request.method == "GET":
        return _page(request, {})
    now = timezone.now()
    token = (request.POST.get("token") or "").strip()
    upload = request.FILES.get("file")
    try:
        if upload is not None:
            if upload.size is not None and upload.size > _MAX_FILE_BYTES:
                raise ValidationError({"file": ["The export is larger than 20 MB."]})
            export = export_load(raw=upload.read())
        elif token:
            base_url = (request.POST.get("base_url") or "").strip() or None
            export = export_fetch(source=request.POST.get("source", ""), token=token, now=now, base_url=base_url)
        else:
            raise ValidationError({"token": ["Give a read-only API token or choose an export file."]})
        report = import_run(export=export, actor=request.user, now=now, dry_run=True)
    except ValidationError as exc:
        return _page(request, {"errors": exc.messages}, status=400)
    ticket = secrets.token_urlsafe(16)
    cache.set(_key(request, ticket), export, _KEEP_SECONDS)
    return _page(request, {"report": report, "ticket": ticket})


@login_required
@require_POST
def import_apply(request: HttpRequest) -> HttpResponse:
    """Apply what the dry run showed, then compare the next 8 weeks with the source's own answer."""
    _require_staff(request)
    ticket = request.POST.get("ticket", "")
    export = cache.get(_key(request, ticket)) if ticket else None
    if export is None:
        return _page(request, {"errors": ["That dry run has expired or was not yours: run it again."]}, status=400)
    report = import_run(export=export, actor=request.user, now=timezone.now(), dry_run=False)
    return _page(request, {"report": report})
