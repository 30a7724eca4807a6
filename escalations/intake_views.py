"""HTTP edge of alert intake: size limit, JSON parsing, per-integration rate limit, then one call
into escalations.intake. Record and return: escalation runs in the engine after commit.

Status codes follow what the senders expect: PagerDuty clients get PagerDuty's bodies; Alertmanager
retries 5xx and drops 4xx, so a malformed payload is a 400 and only our own failures are 5xx.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParser
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from escalations import intake
from escalations.models import Heartbeat, Integration

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
            "d": 86400, "day": 86400}


def _rate() -> tuple[int, int] | None:
    rate = getattr(settings, "BACKSTOP_INTAKE_RATE", None)
    if rate is None:
        rate = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get("integration")
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


def throttle_exceeded(key: str) -> bool:
    """Fixed-window counter per integration key in the shared cache (Redis in production), so the
    limit holds across every web process. Only plausible keys are counted."""
    rate = _rate()
    if rate is None or not intake.throttle_key_is_plausible(key):
        return False
    limit, period = rate
    window = int(time.time() // period)
    cache_key = f"intake-rate:{key}:{window}"
    try:
        count = _hit_count(cache_key, timeout=period + 5)
    except Exception:  # the cache being down must not stop alerts
        logger.warning("Intake rate limit unavailable (cache error)", exc_info=True)
        return False
    return count > limit


def _hit_count(cache_key: str, *, timeout: int) -> int:
    """Count one hit on the window's counter and return the new count."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # Every event passes here: one pipelined round trip (INCR, EXPIRE) instead of the three that
        # Django's add + incr cost (SET NX, EXISTS, INCR). The key stays the one Django would use.
        redis_key = backend.make_and_validate_key(cache_key)
        client = backend._cache.get_client(redis_key, write=True)
        count, _ = client.pipeline(transaction=False).incr(redis_key).expire(redis_key, timeout).execute()
        return count
    try:
        cache.add(cache_key, 0, timeout=timeout)
        return cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=timeout)
        return 1


class _TooLarge(Exception):
    pass


def _body(request: HttpRequest) -> bytes:
    limit = settings.BACKSTOP_INTAKE_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _TooLarge
    # Read at most limit + 1 bytes: a lying or missing Content-Length cannot make us buffer more.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _TooLarge
    return body


def _json(body: bytes):
    """Parsed JSON, or raise intake.EventInvalid."""
    if not body.strip():
        raise intake.EventInvalid(["Request body is empty"])
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise intake.EventInvalid([f"Request body is not valid JSON: {exc}"]) from None
    except RecursionError:  # "[[[[…" 100,000 deep: json.loads recurses once per level (was a 500)
        raise intake.EventInvalid(["Request body is nested too deeply"]) from None


# --- PagerDuty ----------------------------------------------------------------------------------


def _pd_invalid(errors: list[str], message: str = "Event object is invalid") -> JsonResponse:
    return JsonResponse({"status": "invalid event", "message": message, "errors": errors}, status=400)


def _pd_too_large() -> JsonResponse:
    limit = settings.BACKSTOP_INTAKE_MAX_BYTES
    return JsonResponse(
        {"status": "invalid event", "message": "Request entity too large",
         "errors": [f"Request body exceeds {limit} bytes"]},
        status=413,
    )


def _pd_throttled() -> JsonResponse:
    response = JsonResponse(
        {"status": "throttle exceeded",
         "message": "Requests for this service are arriving too quickly. Please retry later.",
         "errors": ["Rate limit exceeded"]},
        status=429,
    )
    response["Retry-After"] = "1"
    return response


def _pagerduty(request: HttpRequest, process: Callable, success: Callable[[object], dict]) -> JsonResponse:
    try:
        body = _body(request)
    except _TooLarge:
        return _pd_too_large()
    try:
        data = _json(body)
    except intake.EventInvalid as exc:
        return _pd_invalid(exc.errors)
    key = data.get("routing_key") if isinstance(data, dict) else None
    if isinstance(key, str) and throttle_exceeded(key):
        return _pd_throttled()
    try:
        result = process(integration_key=None, body=data)
    except intake.EventInvalid as exc:
        return _pd_invalid(exc.errors, exc.message)
    return JsonResponse(success(result), status=202)


@csrf_exempt
@require_http_methods(["POST"])
def pagerduty_enqueue(request: HttpRequest) -> JsonResponse:
    """PagerDuty Events API v2: POST /integrations/pagerduty/v2/enqueue."""
    return _pagerduty(
        request,
        intake.pagerduty_event_process,
        lambda r: {"status": "success", "message": "Event processed", "dedup_key": r.dedup_key},
    )


@csrf_exempt
@require_http_methods(["POST"])
def pagerduty_change_enqueue(request: HttpRequest) -> JsonResponse:
    """PagerDuty Change Events: POST /integrations/pagerduty/v2/change/enqueue."""
    return _pagerduty(
        request,
        intake.pagerduty_change_process,
        lambda r: {"status": "success", "message": "Change event processed"},
    )


# --- Keyed webhooks (key in the URL) ------------------------------------------------------------


def _error(status: int, message: str, errors: list[str] | None = None) -> JsonResponse:
    return JsonResponse({"status": "error", "message": message, "errors": errors or []}, status=status)


def _keyed_integration(key: str, kind: str) -> Integration | JsonResponse:
    integration = Integration.objects.select_related("team", "policy").filter(key=key, kind=kind).first()
    if integration is None:
        return _error(404, "Unknown integration key")
    if not integration.enabled:
        return _error(400, "This integration is disabled; enable it in Backstop to accept events")
    if throttle_exceeded(key):
        response = _error(429, "Rate limit exceeded for this integration; retry later")
        response["Retry-After"] = "1"
        return response
    return integration


def _keyed_webhook(request: HttpRequest, key: str, kind: str, *, read, process, status: int, extra) -> JsonResponse:
    """Shared shape of the keyed webhooks: integration check, size-limited parse, process, JSON answer."""
    integration = _keyed_integration(key, kind)
    if isinstance(integration, JsonResponse):
        return integration
    try:
        result = process(integration, read(request, _body(request)))
    except _TooLarge:
        return _error(413, f"Request body exceeds {settings.BACKSTOP_INTAKE_MAX_BYTES} bytes")
    except intake.EventInvalid as exc:
        return _error(400, exc.message, exc.errors)
    return JsonResponse(
        {
            "status": "success",
            "dedup_key": result.dedup_key,
            "incident_id": result.incident.pk if result.incident else None,
            **extra(result),
        },
        status=status,
    )


@csrf_exempt
@require_http_methods(["POST"])
def alertmanager_webhook(request: HttpRequest, key: str) -> JsonResponse:
    """Prometheus Alertmanager webhook_configs url: /integrations/alertmanager/<key>/."""
    return _keyed_webhook(
        request, key, Integration.Kind.ALERTMANAGER,
        read=lambda request, body: _json(body),
        process=lambda integration, data: intake.alertmanager_process(integration=integration, body=data),
        status=200, extra=lambda result: {"firing": result.firing},
    )


def _form_or_json(request: HttpRequest, body: bytes):
    content_type = request.content_type or ""
    try:
        if content_type == "application/x-www-form-urlencoded":
            return QueryDict(body, encoding=request.encoding or "utf-8").dict()
        if content_type == "multipart/form-data":
            # The stream is consumed (size-checked) already: parse the bytes we hold.
            post, _files = MultiPartParser(request.META, io.BytesIO(body), request.upload_handlers).parse()
            return post.dict()
    except Exception:
        raise intake.EventInvalid(["Form body could not be decoded"]) from None
    return _json(body)


@csrf_exempt
@require_http_methods(["POST"])
def generic_webhook(request: HttpRequest, key: str) -> JsonResponse:
    """Generic webhook: JSON or form `{summary, details, severity, dedup_key, action}`."""
    return _keyed_webhook(
        request, key, Integration.Kind.GENERIC,
        read=_form_or_json,
        process=lambda integration, data: intake.generic_process(integration=integration, data=data),
        status=202, extra=lambda result: {},
    )


@csrf_exempt
@require_http_methods(["GET", "POST", "HEAD"])
def heartbeat_webhook(request: HttpRequest, token: str) -> HttpResponse:
    """Heartbeat ping: GET or POST /integrations/heartbeat/<token>/ (cron: `curl -fsS …`)."""
    heartbeat = Heartbeat.objects.filter(token=token).first()
    if heartbeat is None:
        return _error(404, "Unknown heartbeat")
    if not heartbeat.enabled:
        return _error(400, "This heartbeat is disabled")
    if throttle_exceeded(token):
        return _error(429, "Rate limit exceeded for this heartbeat; retry later")
    intake.heartbeat_ping(heartbeat=heartbeat)
    return JsonResponse({"status": "success"})
