"""Staff sign in with two factors, and every staff session proves it did.

Staff may change anything for anyone, so a staff password alone must open nothing: not the portal,
not the admin, not the API through a browser session. Having a TOTP authenticator is not enough;
*this session* must have passed a second factor. allauth records each authentication step in the
session (`get_authentication_records`); an "mfa" record means a TOTP code or a recovery code was
checked in this session, for this user. A staff session without one — a session older than this gate,
or one opened by a path that skipped allauth's MFA stage — is ended and must sign in again. Staff
who have not enrolled are sent to enrol; checking the first code at enrolment counts as the session's
second factor (`record_enrolment`), and so does a sign-in through the identity provider whose `amr`
claim names a method the operator accepts (BACKSTOP_OIDC_MFA_AMR, `record_idp_mfa`).

API tokens are not asked: a token can be minted only from a session that passed this gate
(`portal.api.ApiTokenViewSet`), and it expires.
"""

from __future__ import annotations

import enum

from django.conf import settings
from django.http import HttpRequest


class StaffMfa(enum.Enum):
    NOT_REQUIRED = "not_required"  # not staff, not signed in, or the gate is off (local demo)
    PASSED = "passed"  # this session passed a second factor
    ENROL = "enrol"  # no authenticator yet: enrol one
    SIGN_IN_AGAIN = "sign_in_again"  # has an authenticator, but this session never used it


MFA_METHOD = "mfa"


def staff_mfa_status(request: HttpRequest, user) -> StaffMfa:
    if not settings.BACKSTOP_REQUIRE_STAFF_MFA or user is None or not user.is_authenticated:
        return StaffMfa.NOT_REQUIRED
    if not (user.is_staff or user.is_superuser):
        return StaffMfa.NOT_REQUIRED
    if session_passed_mfa(request, user):
        return StaffMfa.PASSED
    return StaffMfa.SIGN_IN_AGAIN if _has_totp(user) else StaffMfa.ENROL


def session_passed_mfa(request: HttpRequest, user) -> bool:
    from allauth.account.authentication import get_authentication_records

    return any(record.get("method") == MFA_METHOD for record in get_authentication_records(request, user))


def _has_totp(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def record_enrolment(sender, request: HttpRequest | None = None, user=None, authenticator=None, **kwargs) -> None:
    """allauth's `authenticator_added`: enrolling TOTP checked a code from the new authenticator.

    Without this, staff who just enrolled would be signed out at once (their session has a password
    record only). The record is written by allauth's own (internal) function, as its MFA stage
    writes it; django-allauth is pinned in pyproject.toml, and tests/proof/test_staff_mfa.py breaks if
    the function moves.
    """
    from allauth.account.internal.flows.login import record_authentication
    from allauth.mfa.models import Authenticator

    if request is None or authenticator is None or authenticator.type != Authenticator.Type.TOTP:
        return
    record_authentication(request, user, MFA_METHOD, id=authenticator.pk, type=authenticator.type, enrolled=True)


def record_idp_mfa(request: HttpRequest, user, *, amr: list[str]) -> None:
    """The identity provider checked a second factor the operator accepts (portal.sso.stages).

    Written like allauth's own MFA record, so every gate above treats this session as having passed
    a second factor; `source` and `amr` say where it came from.
    """
    from allauth.account.internal.flows.login import record_authentication

    record_authentication(request, user, MFA_METHOD, source="oidc", amr=amr)
