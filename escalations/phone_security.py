"""Twilio webhook signature check for the emergency line.

Stand-in for `escalations.twilio_security.twilio_signed` (branch `delivery`), with the same
behaviour: switch the imports in escalations/phone_views.py to it once both are on main.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)


def twilio_request_valid(request: HttpRequest) -> bool:
    """True when X-Twilio-Signature matches the URL Twilio requested and the POST parameters.

    The URL is rebuilt from PUBLIC_BASE_URL, never from the Host header or the scheme Django
    sees: behind a TLS proxy those differ from what Twilio signed. No token configured means
    nothing validates (fail closed).
    """
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    params = request.POST if request.method == "POST" else {}
    return RequestValidator(token).validate(url, params, signature)


def twilio_signed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not twilio_request_valid(request):
            logger.warning("Rejected unsigned or forged Twilio request to %s", request.path)
            return HttpResponseForbidden("Invalid Twilio signature")
        return view(request, *args, **kwargs)

    return wrapper
