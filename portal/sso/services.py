"""Who an IdP sign-in is, decided in one place: link to an account, create one, or refuse, and why.

The decision (`sso_user_resolve`), in order:

1. Already linked (allauth found a SocialAccount for the IdP's `sub`): that account, if active.
2. No e-mail from the IdP, or one it does not say is verified: refused. Nothing is linked or created,
   whatever account has that address.
3. A Backstop account has that address (case-insensitive): linked and signed in, if active.
   Its password is kept: Backstop's accounts are made by staff, so the address was never chosen
   by a stranger.
4. Unknown address: refused, or, with BACKSTOP_OIDC_AUTO_CREATE, a new account (no password, never
   staff) in the default team and role when one is configured.

Deactivated accounts are refused (2 and 3): staff deactivate people who left, and an IdP account that
outlived them must not bring them back. Reactivation is a staff decision in the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.db import IntegrityError, transaction

from portal.models import User
from portal.sso.config import SsoConfig
from rotations.models import Team
from rotations.services.memberships import membership_create

logger = logging.getLogger(__name__)


class SsoRefused(Exception):
    """This IdP identity may not sign in. Show `message` to the person (403); nothing was written.

    `reason` is a stable code for tests and logs: no_email, unverified, no_account, inactive, connect.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class IdpIdentity:
    """What the IdP asserted about the person: e-mail ('' when none), whether it verified it, name."""

    email: str
    email_verified: bool
    name: str = ""


def sso_user_resolve(*, linked_user: User | None, identity: IdpIdentity, config: SsoConfig) -> tuple[User, bool]:
    """The account this sign-in opens and whether it was just created; raises SsoRefused."""
    if linked_user is not None:
        _active_check(linked_user, config)
        return linked_user, False
    if not identity.email:
        raise SsoRefused(
            "no_email",
            f"{config.name} did not tell Backstop your e-mail address, so it cannot find your account. "
            "Ask the administrator of your identity provider to release the e-mail claim to Backstop.",
        )
    if not identity.email_verified:
        raise SsoRefused(
            "unverified",
            f"{config.name} has not verified that {identity.email} is yours, so Backstop will not sign "
            "you in with it. Verify the address with your identity provider, then try again.",
        )
    user = User.objects.filter(email__iexact=identity.email).first()
    if user is not None:
        _active_check(user, config)
        return user, False
    if not config.auto_create:
        raise SsoRefused(
            "no_account",
            f"There is no Backstop account for {identity.email}. Ask a Backstop administrator to add you.",
        )
    return _user_create_or_match(identity=identity, config=config)


def _active_check(user: User, config: SsoConfig) -> None:
    if not user.is_active:
        raise SsoRefused(
            "inactive",
            f"The Backstop account of {user.email} is deactivated. Ask a Backstop administrator if you "
            "should have access again.",
        )


def _user_create_or_match(*, identity: IdpIdentity, config: SsoConfig) -> tuple[User, bool]:
    try:
        return sso_user_create(identity=identity, config=config), True
    except IntegrityError:
        # The same person's first sign-in in another tab won the unique e-mail: use that account.
        user = User.objects.get(email__iexact=identity.email)
        _active_check(user, config)
        return user, False


@transaction.atomic
def sso_user_create(*, identity: IdpIdentity, config: SsoConfig) -> User:
    """A new account for a verified IdP identity: no password, not staff, in the default team if any."""
    user = User.objects.create_user(email=identity.email, password=None, full_name=identity.name[:150])
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    if config.default_team_slug:
        team = Team.objects.filter(slug=config.default_team_slug).first()
        if team is None:
            logger.warning(
                "sso: BACKSTOP_OIDC_DEFAULT_TEAM %r names no team; user %s was created without one",
                config.default_team_slug,
                user.pk,
            )
        else:
            membership_create(team=team, user=user, role=config.default_role, actor=None)
    logger.info("sso: created user %s on first sign-in", user.pk)
    return user


def password_sign_in_allowed(*, email: str, config: SsoConfig) -> bool:
    """With SSO required, only the break-glass staff accounts may use a password."""
    if not config.required:
        return True
    email = (email or "").strip().lower()
    if email not in config.break_glass_emails:
        return False
    # Only staff: their password still needs the TOTP step, a listed non-staff account would not.
    return User.objects.filter(email__iexact=email, is_staff=True, is_active=True).exists()


def amr_satisfies_mfa(*, amr: Iterable[str], config: SsoConfig) -> bool:
    """The IdP says it checked a second factor the operator accepts (BACKSTOP_OIDC_MFA_AMR)."""
    return bool(config.mfa_amr.intersection(amr))
