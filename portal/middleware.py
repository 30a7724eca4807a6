import zoneinfo
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from portal.staff_mfa import StaffMfa, staff_mfa_status


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
    """Staff use the portal and the admin only from a session that passed a second factor.

    The rules are in portal.staff_mfa. The API is gated where it authenticates a session
    (portal.api_auth.StaffMfaSessionAuthentication), so that it answers in JSON.
    """

    # These never act as the signed-in user: machine callbacks, health checks, files, and the API.
    exempt_prefixes = ("/static/", "/healthz", "/readyz", "/api/", "/integrations/", "/twilio/", "/ical/")
    # Staff without an authenticator may reach allauth's pages, where they enrol one.
    enrol_prefixes = ("/accounts/",)

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(self.exempt_prefixes):
            return self.get_response(request)
        status = staff_mfa_status(request, getattr(request, "user", None))
        if status is StaffMfa.ENROL and not request.path.startswith(self.enrol_prefixes):
            return redirect(reverse("mfa_activate_totp") + "?" + urlencode({"next": request.get_full_path()}))
        if status is StaffMfa.SIGN_IN_AGAIN:
            logout(request)
            messages.warning(request, "Staff sign in with their authenticator code. Please sign in again.")
            return redirect(reverse("account_login") + "?" + urlencode({"next": request.get_full_path()}))
        return self.get_response(request)
