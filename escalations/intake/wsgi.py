"""The PagerDuty endpoints as a bare WSGI application, in front of Django's handler.

PagerDuty events are the one path where a monitoring system may send thousands of requests a
second. Their views need nothing of Django's request machinery: no session, no user, no URL
parameters, no middleware but the security headers. Building the HttpRequest and HttpResponse,
resolving the URL and running the handler's chain cost about as much CPU as the rest of the
request (JSON, validation and the INSERT), so `PagerDutyWSGI` answers POSTs to the two paths
itself with `intake_views.pagerduty_answer`, the code the Django views run, and renders the same
status line, headers and body (plus a Content-Length). It keeps what the handler does around a
request: the request_started/request_finished signals (database connections are checked and closed
as usual), SecurityMiddleware's headers (computed by that middleware), Django's own 500 response and
logging for an unexpected error, Host validation against ALLOWED_HOSTS (a 400 as Django's, remembered per
Host header so the hot path pays a dict lookup), and everything else (other methods and paths, and plain-HTTP
requests that SECURE_SSL_REDIRECT would redirect) goes to the Django handler given.
"""

from __future__ import annotations

import http

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware

from escalations.intake import kick as intake_kick
from escalations.intake import views as intake_views
from escalations.monitoring import metrics

PATHS = {"/integrations/pagerduty/v2/enqueue": False, "/integrations/pagerduty/v2/change/enqueue": True}
_STATUS = {s.value: f"{s.value} {s.phrase}" for s in http.HTTPStatus}


def is_secure(environ: dict) -> bool:
    """HttpRequest.is_secure() for this environ (SECURE_PROXY_SSL_HEADER, then the WSGI scheme)."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        header, secure_value = proxy
        value = environ.get(header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


# Distinct Host headers remembered per process; beyond this (random Hosts from a scanner) each is
# checked afresh, as Django's handler does for every request.
HOST_CACHE_SIZE = 256


class _HostCheck:
    """request.get_host()'s verdict for an environ, remembered per (Host, X-Forwarded-Host, server name
    and port) while the host settings stay the same objects (override_settings replaces them)."""

    def __init__(self) -> None:
        self._settings: tuple = ()
        self._verdicts: dict[tuple, DisallowedHost | None] = {}

    def __call__(self, environ: dict) -> DisallowedHost | None:
        current = (settings.ALLOWED_HOSTS, settings.DEBUG, settings.USE_X_FORWARDED_HOST, settings.USE_X_FORWARDED_PORT)
        if not all(a is b for a, b in zip(current, self._settings, strict=False)) or not self._settings:
            self._settings, self._verdicts = current, {}
        key = (
            environ.get("HTTP_HOST"),
            environ.get("HTTP_X_FORWARDED_HOST"),
            environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"),
            environ.get("HTTP_X_FORWARDED_PORT"),
        )
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        verdict = None
        try:
            WSGIRequest(environ).get_host()
        except DisallowedHost as exc:
            verdict = exc
        if len(self._verdicts) < HOST_CACHE_SIZE:
            self._verdicts[key] = verdict
        return verdict


class _Secure:
    """The only part of a request SecurityMiddleware.process_response looks at."""

    def __init__(self, secure: bool) -> None:
        self.secure = secure

    def is_secure(self) -> bool:
        return self.secure


class _Body:
    """The response iterable. close() runs after the server has sent the response: the drain kick
    (a cache round trip, now and then a Celery publish) stays out of the sender's latency."""

    __slots__ = ("chunks", "kick")

    def __init__(self, content: bytes, kick: bool) -> None:
        self.chunks = (content,)
        self.kick = kick

    def __iter__(self):
        return iter(self.chunks)

    def close(self) -> None:
        try:
            if self.kick:
                intake_kick.inbox_kick()
        finally:
            signals.request_finished.send(sender=PagerDutyWSGI)


class PagerDutyWSGI:
    """POST /integrations/pagerduty/v2/enqueue and …/change/enqueue; everything else to `fallback`."""

    def __init__(self, fallback) -> None:
        self.fallback = fallback
        self._security: dict[bool, list[tuple[str, str]]] = {}
        self._middleware: SecurityMiddleware | None = None
        self.host_check = _HostCheck()

    def security_middleware(self) -> SecurityMiddleware:
        if self._middleware is None:
            self._middleware = SecurityMiddleware(lambda request: None)
        return self._middleware

    def security_headers(self, secure: bool) -> list[tuple[str, str]]:
        """The headers SecurityMiddleware adds to a JSON response for a (non-)secure request: asked of
        the middleware once per process, as Django's handler builds its middleware once."""
        headers = self._security.get(secure)
        if headers is None:
            response = HttpResponse(content_type="application/json")
            self.security_middleware().process_response(_Secure(secure), response)
            headers = self._security[secure] = [item for item in response.items() if item[0] != "Content-Type"]
        return headers

    def __call__(self, environ, start_response):
        change = PATHS.get(environ.get("PATH_INFO"))
        if change is None or environ.get("REQUEST_METHOD") != "POST":
            return self.fallback(environ, start_response)
        secure = is_secure(environ)
        if not secure and settings.SECURE_SSL_REDIRECT:
            return self.fallback(environ, start_response)  # redirected (or exempted) by SecurityMiddleware
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            disallowed = self.host_check(environ)
            if disallowed is not None:
                raise disallowed
            try:
                body = intake_views.body_read(environ["wsgi.input"].read, environ.get("CONTENT_LENGTH"))
            except intake_views._TooLarge:
                body = None
            answer = intake_views.pagerduty_answer(body, change=change)
            metrics.intake_observe(kind="pagerduty", status=answer.status)
        except Exception as exc:
            return self._error(environ, start_response, exc)
        content = answer.content()
        start_response(
            _STATUS[answer.status],
            [
                ("Content-Type", "application/json"),
                *answer.headers,
                *self.security_headers(secure),
                ("Content-Length", str(len(content))),
            ],
        )
        return _Body(content, answer.accepted)

    def _error(self, environ, start_response, exc: Exception):
        """Django's answer to an unexpected exception (logged, got_request_exception, handler500).
        Called from the except block: response_for_exception reads sys.exc_info()."""
        request = WSGIRequest(environ)
        response = response_for_exception(request, exc)
        response = self.security_middleware().process_response(request, response)
        response._handler_class = self.__class__  # request_finished is sent by response.close()
        headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return response
