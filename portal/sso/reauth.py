"""A sign-in through the identity provider moments ago stands in for allauth's re-authentication.

allauth asks people to prove themselves again (password, e-mail code or TOTP code) before sensitive
account changes, enrolling TOTP among them. Someone who signed in through the IdP may have no password
Backstop accepts (none at all, or SSO is required) and no authenticator yet, so without this a staff
member sent to enrol TOTP after an IdP sign-in could never do so. A fresh IdP sign-in in this session,
within allauth's re-authentication window (ACCOUNT_REAUTHENTICATION_TIMEOUT, 5 minutes), has just
proved who they are.
"""

from __future__ import annotations

import time

from allauth.account import app_settings as account_settings
from allauth.account.authentication import get_authentication_records
from django.http import HttpRequest

SOCIAL_METHOD = "socialaccount"  # allauth's record of a provider sign-in


def signed_in_through_idp_recently(request: HttpRequest | None) -> bool:
    if request is None or not request.user.is_authenticated:
        return False
    since = time.time() - account_settings.REAUTHENTICATION_TIMEOUT
    return any(
        record.get("method") == SOCIAL_METHOD and record.get("at", 0) >= since
        for record in get_authentication_records(request, request.user)
    )
