"""HTTP edge of alert intake: size limit, JSON parsing, validation (pure Python), per-integration rate
limit, then ONE statement that stores the event in the inbox (`escalations.intake.inbox`) and a 202. The
drain applies it a moment later; escalation runs in the engine after that.

Status codes follow what the senders expect: PagerDuty clients get PagerDuty's bodies; Alertmanager
retries 5xx and drops 4xx, so a malformed payload is a 400 and only our own failures are 5xx.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache, caches
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParser
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from escalations.intake import heartbeats, inbox, kick, parsers
from escalations.intake import rate as intake_rate
from escalations.models import Heartbeat, InboxEvent, Incident, Integration
from escalations.monitoring import metrics

logger = logging.getLogger(__name__)

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
# This process's share of every integration's rate budget (escalations.intake.rate).
rate_leases = intake_rate.RateLeases()


def _rate() -> tuple[int, int] | None:
    rate = getattr(settings, "BACKSTOP_INTAKE_RATE", None)
    if rate is None:
        rate = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get("integration")
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


def throttle_exceeded(key: str, *, now: float | None = None) -> bool:
    """Is `key` over its rate limit? Fixed windows counted in the shared cache (Redis in production),
    so the limit holds across every web process; tokens are leased a few at a time
    (escalations.intake.rate). Only plausible keys are counted. A cache outage admits everything."""
    rate = _rate()
    if rate is None or not parsers.throttle_key_is_plausible(key):
        return False
    limit, period = rate
    backend = caches["default"]

    def take(n: int, window: int) -> int:
        cache_key = f"intake-rate:{key}:{window}"
        client = kick.redis_write_client(backend)
        if client is None:
            return _hit_count(cache_key, n, timeout=period + 5)
        # One round trip: INCRBY + EXPIRE instead of the three of Django's add + incr; the key stays
        # the one Django would use.
        redis_key = backend.make_and_validate_key(cache_key)
        return client.pipeline(transaction=False).incrby(redis_key, n).expire(redis_key, period + 5).execute()[0]

    try:
        return not rate_leases.admit(
            key, limit=limit, period=period, now=time.time() if now is None else now, take=take
        )
    except Exception:  # the cache being down must not stop alerts
        logger.warning("Intake rate limit unavailable (cache error)", exc_info=True)
        return False


def _hit_count(cache_key: str, n: int, *, timeout: int) -> int:
    """Add n hits to the window's counter and return the new count (caches other than Redis)."""
    try:
        cache.add(cache_key, 0, timeout=timeout)
        return cache.incr(cache_key, n)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, n, timeout=timeout)
        return n


class _TooLarge(Exception):
    pass


def body_read(read, content_length: str | None) -> bytes:
    """The request body, read through `read(n)` as Django reads it: no further than the declared
    Content-Length (none: empty), and no further than the size limit plus one byte, so a lying or
    missing Content-Length cannot make us buffer more. Raises _TooLarge over the limit."""
    limit = settings.BACKSTOP_INTAKE_MAX_BYTES
    try:
        declared = int(content_length or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _TooLarge
    size = min(declared, limit + 1)
    body = read(size) if size > 0 else b""
    if len(body) > limit:
        raise _TooLarge
    return body


def _body(request: HttpRequest) -> bytes:
    return body_read(request.read, request.META.get("CONTENT_LENGTH"))


def _json(body: bytes):
    """Parsed JSON, or raise intake.EventInvalid."""
    if not body.strip():
        raise parsers.EventInvalid(["Request body is empty"])
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise parsers.EventInvalid([f"Request body is not valid JSON: {exc}"]) from None
    except RecursionError:
        # "[[[[…" 100,000 deep: json.loads recurses once per level; the sender's body is at fault (a 400).
        raise parsers.EventInvalid(["Request body is nested too deeply"]) from None


class Answer(NamedTuple):
    """What an intake endpoint answers, before it becomes an HTTP response (Django's, or the bare
    WSGI one of escalations.intake.wsgi: both render it the same way)."""

    status: int
    data: dict
    headers: tuple[tuple[str, str], ...] = ()
    accepted: bool = False  # an event was stored: kick the drain once the response is out

    def content(self) -> bytes:
        return json.dumps(self.data).encode()


# --- PagerDuty ----------------------------------------------------------------------------------


def _pd_invalid(errors: list[str], message: str = "Event object is invalid") -> Answer:
    return Answer(400, {"status": "invalid event", "message": message, "errors": errors})


def _pd_too_large() -> Answer:
    limit = settings.BACKSTOP_INTAKE_MAX_BYTES
    return Answer(
        413,
        {
            "status": "invalid event",
            "message": "Request entity too large",
            "errors": [f"Request body exceeds {limit} bytes"],
        },
    )


_PD_THROTTLED = Answer(
    429,
    {
        "status": "throttle exceeded",
        "message": "Requests for this service are arriving too quickly. Please retry later.",
        "errors": ["Rate limit exceeded"],
    },
    (("Retry-After", "1"),),
)


# The database cannot store the event now (restart, outage): retry soon. PagerDuty's own senders retry
# a 5xx with backoff; Retry-After says when.
RETRY_AFTER_UNAVAILABLE = "5"
UNAVAILABLE_MESSAGE = "The event could not be stored right now; retry later"

_PD_UNAVAILABLE = Answer(
    503,
    {"status": "unavailable", "message": UNAVAILABLE_MESSAGE, "errors": ["Storage unavailable"]},
    (("Retry-After", RETRY_AFTER_UNAVAILABLE),),
)


def _unavailable() -> JsonResponse:
    response = _error(503, UNAVAILABLE_MESSAGE)
    response["Retry-After"] = RETRY_AFTER_UNAVAILABLE
    return response


def _accept(*, key: str, integration_kind: str, kind: str, action: str, dedup_key: str, payload: str) -> None:
    """Store the validated event: one INSERT, committed when this returns."""
    inbox.inbox_accept(
        key=key,
        integration_kind=integration_kind,
        kind=kind,
        action=action,
        dedup_key=dedup_key,
        payload=payload,
        now=timezone.now(),
    )


def pagerduty_answer(body: bytes | None, *, change: bool) -> Answer:
    """PagerDuty Events API v2 (or Change Events, with `change`) for a body read by `body_read`
    (None: over the size limit): validate, rate-limit, store. Nothing is stored unless it is a 202."""
    if body is None:
        return _pd_too_large()
    try:
        data = _json(body)
    except parsers.EventInvalid as exc:
        return _pd_invalid(exc.errors)
    key = data.get("routing_key") if isinstance(data, dict) else None
    if isinstance(key, str) and throttle_exceeded(key):
        return _PD_THROTTLED
    try:
        if change:
            event = parsers.pagerduty_change_parse(data)
            action = dedup_key = ""
        else:
            event = parsers.pagerduty_event_parse(data)
            action = event.action
            dedup_key = event.dedup_key or (inbox.dedup_key_new() if action == "trigger" else "")
        _accept(
            key=event.routing_key,
            integration_kind=Integration.Kind.PAGERDUTY,
            kind=InboxEvent.Kind.CHANGE if change else InboxEvent.Kind.PAGERDUTY,
            action=action,
            dedup_key=dedup_key,
            payload=inbox.payload_text(body, data),
        )
    except parsers.EventInvalid as exc:
        return _pd_invalid(exc.errors, exc.message)
    except inbox.InboxRefused as exc:
        return _pd_invalid([inbox.INVALID_KEY if exc.reason == "unknown" else inbox.DISABLED])
    except inbox.InboxUnavailable:
        return _PD_UNAVAILABLE
    if change:
        return Answer(202, {"status": "success", "message": "Change event processed"}, accepted=True)
    return Answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, accepted=True)


class _KickingResponse(HttpResponse):
    """A response whose close() (after the server has sent it) kicks the inbox drain."""

    def close(self) -> None:
        try:
            kick.inbox_kick()
        finally:
            super().close()


def _response(answer: Answer) -> HttpResponse:
    cls = _KickingResponse if answer.accepted else HttpResponse
    response = cls(answer.content(), content_type="application/json", status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


@metrics.intake_counted("pagerduty")
def _pagerduty(request: HttpRequest, change: bool) -> HttpResponse:
    try:
        body = _body(request)
    except _TooLarge:
        body = None
    return _response(pagerduty_answer(body, change=change))


@csrf_exempt
@require_http_methods(["POST"])
def pagerduty_enqueue(request: HttpRequest) -> HttpResponse:
    """PagerDuty Events API v2: POST /integrations/pagerduty/v2/enqueue (under gunicorn served by
    escalations.intake.wsgi, with the same answers)."""
    return _pagerduty(request, change=False)


@csrf_exempt
@require_http_methods(["POST"])
def pagerduty_change_enqueue(request: HttpRequest) -> HttpResponse:
    """PagerDuty Change Events: POST /integrations/pagerduty/v2/change/enqueue."""
    return _pagerduty(request, change=True)


# --- Keyed webhooks (key in the URL) ------------------------------------------------------------


def _error(status: int, message: str, errors: list[str] | None = None) -> JsonResponse:
    return JsonResponse({"status": "error", "message": message, "errors": errors or []}, status=status)


def _refused(reason: str) -> JsonResponse:
    if reason == "unknown":
        return _error(404, "Unknown integration key")
    return _error(400, inbox.DISABLED)


def _key_refusal(key: str, kind: str) -> str | None:
    """Why this key accepts nothing ("unknown", "disabled"), or None. Only asked on error paths."""
    try:
        enabled = Integration.objects.filter(key=key, kind=kind).values_list("enabled", flat=True).first()
    except inbox.UNAVAILABLE_ERRORS:
        return None  # the database is down: the answer is about the body, which is bad whatever the key

    return "unknown" if enabled is None else None if enabled else "disabled"


@metrics.intake_counted()
def _keyed_webhook(request: HttpRequest, key: str, kind: str, *, read, parse, status: int) -> HttpResponse:
    """Shared shape of the keyed webhooks: size-limited parse, rate limit, one INSERT, JSON answer.

    A bad key answers 404 (unknown) or 400 (disabled) even when the body is also bad, as the senders
    expect: that
    lookup is made only on the error path, so accepted events cost one statement.
    """
    try:
        body = _body(request)
    except _TooLarge:
        if refusal := _key_refusal(key, kind):
            return _refused(refusal)
        return _error(413, f"Request body exceeds {settings.BACKSTOP_INTAKE_MAX_BYTES} bytes")
    try:
        data = read(request, body)
        action, dedup_key = parse(data)
    except parsers.EventInvalid as exc:
        if refusal := _key_refusal(key, kind):
            return _refused(refusal)
        return _error(400, exc.message, exc.errors)
    if throttle_exceeded(key):
        response = _error(429, "Rate limit exceeded for this integration; retry later")
        response["Retry-After"] = "1"
        return response
    try:
        # A form was decoded into a dict: store that as JSON; a JSON body is stored as received.
        payload = json.dumps(data) if request.content_type in _FORM_TYPES else inbox.payload_text(body, data)
        _accept(key=key, integration_kind=kind, kind=kind, action=action, dedup_key=dedup_key, payload=payload)
    except parsers.EventInvalid as exc:
        return _error(400, exc.message, exc.errors)
    except inbox.InboxRefused as exc:
        return _refused(exc.reason)
    except inbox.InboxUnavailable:
        return _unavailable()
    # Applied by the drain a moment later: the incident is not known yet when we answer.
    return _response(
        Answer(status, {"status": "success", "message": "Event accepted", "dedup_key": dedup_key}, accepted=True)
    )


def _read_json(request: HttpRequest, body: bytes):
    return _json(body)


def _alertmanager_parse(data) -> tuple[str, str]:
    message = parsers.alertmanager_parse(data)
    return message.status, message.dedup_key


@csrf_exempt
@require_http_methods(["POST"])
def alertmanager_webhook(request: HttpRequest, key: str) -> HttpResponse:
    """Prometheus Alertmanager webhook_configs url: /integrations/alertmanager/<key>/."""
    return _keyed_webhook(
        request, key, Integration.Kind.ALERTMANAGER, read=_read_json, parse=_alertmanager_parse, status=200
    )


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


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
        raise parsers.EventInvalid(["Form body could not be decoded"]) from None
    return _json(body)


def _generic_parse(data) -> tuple[str, str]:
    event = parsers.generic_parse(data)
    return event.action, event.dedup_key or (inbox.dedup_key_new() if event.action == "trigger" else "")


@csrf_exempt
@require_http_methods(["POST"])
def generic_webhook(request: HttpRequest, key: str) -> HttpResponse:
    """Generic webhook: JSON or form `{summary, details, severity, dedup_key, action}`."""
    return _keyed_webhook(request, key, Integration.Kind.GENERIC, read=_form_or_json, parse=_generic_parse, status=202)


@csrf_exempt
@require_http_methods(["GET", "POST", "HEAD"])
def heartbeat_webhook(request: HttpRequest, token: str) -> HttpResponse:
    """Heartbeat ping: GET or POST /integrations/heartbeat/<token>/ (cron: `curl -fsS …`)."""
    try:
        heartbeat = Heartbeat.objects.filter(token=token).first()
        if heartbeat is None:
            return _error(404, "Unknown heartbeat")
        if not heartbeat.enabled:
            return _error(400, "This heartbeat is disabled")
        if throttle_exceeded(token):
            return _error(429, "Rate limit exceeded for this heartbeat; retry later")
        heartbeats.heartbeat_ping(heartbeat=heartbeat)
    except inbox.UNAVAILABLE_ERRORS:
        return _unavailable()  # the ping was not recorded: cron's `curl -f` fails and it pings again
    return JsonResponse({"status": "success"})


# --- Opsgenie Alert API v2 (key in the Authorization header) ------------------------------------


_GENIE_KEY = re.compile(r"GenieKey\s+(\S+)\s*", re.IGNORECASE)


def _og(status: int, request_id: uuid.UUID, started: float, **data) -> JsonResponse:
    """An answer in Opsgenie's shape: the fields, then how long it took (seconds) and the request id."""
    return JsonResponse(
        {**data, "took": round(time.monotonic() - started, 3), "requestId": str(request_id)}, status=status
    )


def _og_refused(reason: str, request_id: uuid.UUID, started: float) -> JsonResponse:
    if reason == "disabled":
        return _og(403, request_id, started, message=inbox.DISABLED)
    return _og(401, request_id, started, message="Could not authenticate")


def _genie_key(request: HttpRequest) -> str:
    match = _GENIE_KEY.fullmatch(request.headers.get("Authorization", ""))
    return match.group(1) if match else ""


@metrics.intake_counted("opsgenie")
def _opsgenie_accept(request: HttpRequest, *, parse, action: str, dedup_key, stored) -> HttpResponse:
    """Shared path of the Opsgenie POSTs: key, size limit, JSON, validation, rate limit, one INSERT.
    A bad key answers 401/403 before a bad body's 422, as Opsgenie does; nothing is stored unless 202."""
    started = time.monotonic()
    request_id = uuid.uuid4()
    key = _genie_key(request)
    if not key:
        return _og(401, request_id, started, message="Could not authenticate")
    kind = Integration.Kind.OPSGENIE
    try:
        body = _body(request)
    except _TooLarge:
        if refusal := _key_refusal(key, kind):
            return _og_refused(refusal, request_id, started)
        return _og(413, request_id, started, message=f"Request body exceeds {settings.BACKSTOP_INTAKE_MAX_BYTES} bytes")
    try:
        data = _json(body) if body.strip() else None
        parsed = parse(data)
    except parsers.EventInvalid as exc:
        if refusal := _key_refusal(key, kind):
            return _og_refused(refusal, request_id, started)
        return _og(422, request_id, started, message=exc.message, errors=exc.errors)
    if throttle_exceeded(key):
        response = _og(429, request_id, started, message="Rate limit exceeded; retry later")
        response["Retry-After"] = "1"
        return response
    try:
        inbox.inbox_accept(
            key=key,
            integration_kind=kind,
            kind=InboxEvent.Kind.OPSGENIE,
            action=action,
            dedup_key=dedup_key(parsed),
            payload=json.dumps(stored(data)),
            now=timezone.now(),
            request_id=request_id,
        )
    except parsers.EventInvalid as exc:
        return _og(422, request_id, started, message=exc.message, errors=exc.errors)
    except inbox.InboxRefused as exc:
        return _og_refused(exc.reason, request_id, started)
    except inbox.InboxUnavailable:
        response = _og(503, request_id, started, message=UNAVAILABLE_MESSAGE)
        response["Retry-After"] = RETRY_AFTER_UNAVAILABLE
        return response
    answer = Answer(
        202,
        {
            "result": "Request will be processed",
            "took": round(time.monotonic() - started, 3),
            "requestId": str(request_id),
        },
        accepted=True,
    )
    return _response(answer)


@csrf_exempt
@require_http_methods(["POST"])
def opsgenie_alerts(request: HttpRequest) -> HttpResponse:
    """Opsgenie Create Alert: POST /integrations/opsgenie/v2/alerts. The alias is the dedup key."""
    return _opsgenie_accept(
        request,
        parse=parsers.opsgenie_alert_parse,
        action="trigger",
        dedup_key=lambda alert: parsers.opsgenie_dedup_key(alert.alias) if alert.alias else inbox.dedup_key_new(),
        stored=lambda data: {"alert": data},
    )


@csrf_exempt
@require_http_methods(["POST"])
def opsgenie_alert_action(request: HttpRequest, identifier: str, verb: str) -> HttpResponse:
    """Opsgenie Close / Acknowledge / Add Note: POST …/v2/alerts/{identifier}/{close|acknowledge|notes}
    ?identifierType=id|alias|tiny. `id` (the default) and `tiny` name a Backstop incident number, or,
    when no incident of the team has that number, an alias."""
    identifier_type = request.GET.get("identifierType") or "id"

    def parse(data):
        return parsers.opsgenie_action_parse(
            verb=verb, identifier=identifier, identifier_type=identifier_type, body=data
        )

    return _opsgenie_accept(
        request,
        parse=parse,
        action=parsers.OPSGENIE_ACTIONS.get(verb, ""),
        dedup_key=lambda a: parsers.opsgenie_dedup_key(a.identifier) if a.identifier_type == "alias" else "",
        stored=lambda data: {"verb": verb, "identifier": identifier, "identifierType": identifier_type, "body": data},
    )


_OG_ACTIONS = {"trigger": "Create", "resolve": "Close", "acknowledge": "Acknowledge", "note": "AddNote"}


@csrf_exempt
@require_http_methods(["GET"])
def opsgenie_request_status(request: HttpRequest, request_id: str) -> HttpResponse:
    """Opsgenie Get Request Status: GET …/v2/alerts/requests/{requestId}, for a request of this key's
    integration. Until the drain has applied it, a 404 as Opsgenie answers for a request it has not
    processed yet (senders poll again)."""
    started = time.monotonic()
    own_id = uuid.uuid4()
    key = _genie_key(request)
    integration = (
        Integration.objects.filter(key=key, kind=Integration.Kind.OPSGENIE).only("pk", "enabled").first()
        if key
        else None
    )
    if integration is None:
        return _og(401, own_id, started, message="Could not authenticate")
    if not integration.enabled:
        return _og(403, own_id, started, message=inbox.DISABLED)
    try:
        wanted = uuid.UUID(request_id)
    except ValueError:
        return _og(422, own_id, started, message="Request id is not valid")
    row = (
        InboxEvent.objects.filter(request_id=wanted, integration=integration)
        .values("action", "dedup_key", "processed_at", "incident_id", "outcome", "error", "payload")
        .first()
    )
    if row is None or row["processed_at"] is None:
        return _og(404, own_id, started, message="Request not found. It might not be processed, yet.")
    success = not row["error"] and row["incident_id"] is not None
    alias = row["dedup_key"]
    if not alias and row["incident_id"] is not None:
        alias = Incident.objects.filter(pk=row["incident_id"]).values_list("dedup_key", flat=True).first() or ""
    data = {
        "success": success,
        "isSuccess": success,
        "action": _OG_ACTIONS.get(row["action"], row["action"]),
        "processedAt": row["processed_at"].isoformat().replace("+00:00", "Z"),
        "integrationId": str(integration.pk),
        "status": "Failed to process request" if row["error"] else row["outcome"],
        "alertId": str(row["incident_id"]) if row["incident_id"] is not None else "",
        "alias": alias,
    }
    return _og(200, own_id, started, data=data)
