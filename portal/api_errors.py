"""Every API error is JSON with a clear message and, where known, the field at fault."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def _flatten(detail, field: str | None = None) -> list[dict]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = key if field is None else f"{field}.{key}"
            out.extend(_flatten(value, None if key == "non_field_errors" else name))
        return out
    if isinstance(detail, list):
        out = []
        for index, item in enumerate(detail):
            name = field if not isinstance(item, dict | list) else f"{field}[{index}]"
            out.extend(_flatten(item, name))
        return out
    return [{"field": field, "message": str(detail)}]


def json_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(getattr(exc, "message_dict", None) or exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(
            {"error": "internal_error", "message": "Internal error; it has been logged.", "errors": []},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    errors = _flatten(response.data)
    message = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
    code = getattr(exc, "default_code", "error")
    response.data = {"error": code, "message": message or str(exc), "errors": errors}
    return response


# --- Django-level errors under /api/ ------------------------------------------------------------
# A URL the router does not match (`/api/v1/incidents/0.3/`), a SuspiciousOperation or a crash in
# middleware never reaches DRF's exception handler; without these, API clients would get HTML.

API_PREFIX = "/api/"


def _api_error(status_code: int, code: str, message: str):
    return JsonResponse({"error": code, "message": message, "errors": []}, status=status_code)


def bad_request(request, exception):
    if request.path.startswith(API_PREFIX):
        return _api_error(400, "bad_request", "Bad request.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if request.path.startswith(API_PREFIX):
        return _api_error(403, "permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if request.path.startswith(API_PREFIX):
        return _api_error(404, "not_found", f"No API endpoint at {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(API_PREFIX):
        return _api_error(500, "internal_error", "Internal error; it has been logged.")
    return defaults.server_error(request)
