import zoneinfo

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone


class UserTimezoneMiddleware:
    """Times are stored in UTC and shown in the viewer's own time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


class StaffMfaRequiredMiddleware:
    """Staff must enrol TOTP before using the portal or the admin."""

    allowed_prefixes = (
        "/accounts/",
        "/static/",
        "/healthz",
        "/readyz",
        "/api/",
        "/integrations/",
        "/twilio/",
        "/ical/",
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            settings.BACKSTOP_REQUIRE_STAFF_MFA
            and user is not None
            and user.is_authenticated
            and user.is_staff
            and not request.path.startswith(self.allowed_prefixes)
            and not _has_mfa(user)
        ):
            return redirect(reverse("mfa_activate_totp") + f"?next={request.path}")
        return self.get_response(request)


def _has_mfa(user) -> bool:
    cached = getattr(user, "_backstop_has_mfa", None)
    if cached is None:
        cached = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
        user._backstop_has_mfa = cached
    return cached
