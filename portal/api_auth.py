"""Personal API tokens: `Authorization: Bearer bst_…`. Stored as SHA-256, shown once."""

import hashlib
import secrets
from datetime import datetime

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions

from portal.models import ApiToken
from portal.staff_mfa import StaffMfa, staff_mfa_status

TOKEN_PREFIX = "bst_"


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        raw = header[1].decode(errors="replace")
        return self._user_for(raw, timezone.now())

    def _user_for(self, raw: str, now: datetime):
        token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(raw)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                f"This API token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; "
                "create a new one on your profile page."
            )
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return (token.user, token)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class StaffMfaSessionAuthentication(authentication.SessionAuthentication):
    """A browser session, with the staff MFA gate of the portal (portal.staff_mfa), answered in JSON.

    Token requests never get here: the token class comes first, and a token is minted only from a
    session that passed the gate.
    """

    messages = {
        StaffMfa.ENROL: "Staff accounts must set up two-factor authentication before using the API: "
        "enrol an authenticator app in the portal, or use an API token.",
        StaffMfa.SIGN_IN_AGAIN: "This session did not pass two-factor authentication: sign in again "
        "with your authenticator code, or use an API token.",
    }

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        message = self.messages.get(staff_mfa_status(request._request, result[0]))
        if message is not None:
            raise exceptions.PermissionDenied(message)
        return result


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer token in /api/schema/ (and keeps `check --deploy` free of W001)."""

    target_class = "portal.api_auth.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


class StaffMfaSessionScheme(OpenApiAuthenticationExtension):
    """Documents the session cookie in /api/schema/ as DRF's own session class is."""

    target_class = "portal.api_auth.StaffMfaSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
