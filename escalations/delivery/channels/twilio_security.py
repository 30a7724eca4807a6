"""`twilio_signed`: reject any webhook request that Twilio did not sign."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)


def twilio_request_url(request: HttpRequest) -> str:
    """The URL Twilio requested. Behind a TLS-terminating proxy Django sees http:// and an internal
    host, but Twilio signed the public https:// URL, so build it from PUBLIC_BASE_URL."""
    return settings.PUBLIC_BASE_URL + request.get_full_path()


def twilio_signature_valid(request: HttpRequest) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    params = request.POST if request.method == "POST" else {}
    return RequestValidator(token).validate(twilio_request_url(request), params, signature)


def twilio_signed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorator: 403 (and the view never runs) unless X-Twilio-Signature is valid."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not twilio_signature_valid(request):
            logger.warning("rejected unsigned or forged Twilio request to %s", request.path)
            return HttpResponseForbidden("invalid Twilio signature")
        return view(request, *args, **kwargs)

    return wrapper
