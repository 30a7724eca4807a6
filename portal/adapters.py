"""allauth's hooks: no public sign-up, SSO decisions (portal.sso), passwords refused when SSO is required."""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base import AuthProcess
from django import forms
from django.http import HttpRequest
from django.shortcuts import render

from portal.sso.claims import sociallogin_identity
from portal.sso.config import SsoConfig, sso_config
from portal.sso.reauth import signed_in_through_idp_recently
from portal.sso.services import SsoRefused, password_sign_in_allowed, sso_user_resolve

logger = logging.getLogger(__name__)

# allauth's MFA stage, replaced by the one that also accepts the IdP's `amr` claim.
_ALLAUTH_MFA_STAGE = "allauth.mfa.stages.AuthenticateStage"
_IDP_AWARE_MFA_STAGE = "portal.sso.stages.IdpAwareAuthenticateStage"


def _password_refused_message(config: SsoConfig) -> str:
    return (
        f"This installation signs in with {config.name}: use the button above. Passwords work only for "
        "the emergency staff accounts."
    )


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        # People are invited by staff; an on-call tool has no public sign-up.
        return False

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        # Refused before the password is checked (the attempt still counts against the rate limit),
        # so a required-SSO installation never says whether a password was right.
        super().pre_authenticate(request, **credentials)
        config = sso_config()
        if not password_sign_in_allowed(email=credentials.get("email") or "", config=config):
            raise forms.ValidationError(_password_refused_message(config))

    def reauthenticate(self, user, password: str) -> bool:
        if not password_sign_in_allowed(email=user.email, config=sso_config()):
            return False
        return super().reauthenticate(user, password)

    def send_password_reset_mail(self, user, email: str, context: dict) -> None:
        # A reset would set a password nobody may use; the page still says "sent" (no enumeration).
        if not password_sign_in_allowed(email=user.email, config=sso_config()):
            return
        super().send_password_reset_mail(user, email, context)

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        return not signed_in_through_idp_recently(context.request)

    def get_login_stages(self) -> list[str]:
        return [_IDP_AWARE_MFA_STAGE if path == _ALLAUTH_MFA_STAGE else path for path in super().get_login_stages()]


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Every SSO sign-in is linked, created or refused by portal.sso.services, before allauth goes on."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        # Accounts are created (or not) in pre_social_login; allauth's sign-up form is never the way in.
        return False

    def pre_social_login(self, request, sociallogin) -> None:
        config = sso_config()
        try:
            if sociallogin.state.get("process") == AuthProcess.CONNECT:
                raise SsoRefused(
                    "connect",
                    f"Backstop links your {config.name} identity when you sign in with it, by your verified "
                    "e-mail address; it cannot be attached to another account.",
                )
            linked = sociallogin.user if sociallogin.is_existing else None
            user, _created = sso_user_resolve(
                linked_user=linked, identity=sociallogin_identity(sociallogin), config=config
            )
        except SsoRefused as refusal:
            # The reason only (no address): an operator sees why people bounce, e.g. "unverified" from an IdP
            # that does not send email_verified.
            logger.info("sso: sign-in refused (%s)", refusal.reason)
            response = render(
                request, "account/sso_refused.html", {"message": refusal.message, "reason": refusal.reason}, status=403
            )
            raise ImmediateHttpResponse(response) from None
        if linked is None:
            sociallogin.connect(request, user)
