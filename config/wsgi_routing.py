"""WSGI entry that sends alert intake around the portal's middleware stack.

/integrations/ requests carry no cookies and no session: sessions, CSRF (the views are exempt),
auth, messages, allauth, htmx, the user's time zone and the staff-MFA check do nothing useful for
them, yet cost about half of a trivial request's CPU (measured with bench/profile_intake.py). They
get Django's own handler (URL resolution, exception handling, request signals, so database
connections are managed as usual) with only `INTAKE_MIDDLEWARE` (SecurityMiddleware: the HTTPS
redirect and HSTS still apply; AllowedHostMiddleware checks Host against ALLOWED_HOSTS). Every other
path gets the full stack from settings.MIDDLEWARE.
The PagerDuty endpoints go further: escalations.intake.wsgi answers them without Django's handler.
"""

from __future__ import annotations

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

INTAKE_PREFIX = "/integrations/"
INTAKE_MIDDLEWARE = ("django.middleware.security.SecurityMiddleware", "config.wsgi_routing.AllowedHostMiddleware")


class AllowedHostMiddleware:
    """Host against ALLOWED_HOSTS, a 400 otherwise, as CommonMiddleware does for the portal's requests."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        request.get_host()
        return self.get_response(request)


class LeanWSGIHandler(WSGIHandler):
    """Django's WSGI handler with a fixed, short list of plain (request/response) middleware."""

    middleware: tuple[str, ...] = INTAKE_MIDDLEWARE

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(self.middleware):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler


class PathRouter:
    """Calls `intake` for paths under INTAKE_PREFIX and `default` for everything else."""

    def __init__(self, default: WSGIHandler, intake) -> None:
        self.default = default
        self.intake = intake

    def __call__(self, environ, start_response):
        handler = self.intake if environ.get("PATH_INFO", "").startswith(INTAKE_PREFIX) else self.default
        return handler(environ, start_response)
