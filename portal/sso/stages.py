"""allauth's MFA login stage, where the IdP's `amr` claim may stand in for the TOTP code.

allauth runs its login stages after every sign-in, SSO included; this one replaces its
`AuthenticateStage` (portal.adapters.AccountAdapter.get_login_stages). When the sign-in came from
the IdP and its ID token's `amr` names a method in BACKSTOP_OIDC_MFA_AMR, the session is recorded
as having passed a second factor (portal.staff_mfa.record_idp_mfa) and no code is asked. Anything
else goes to allauth's own stage: people with an authenticator type its code, as with a password.
"""

from __future__ import annotations

from allauth.mfa.stages import AuthenticateStage

from portal.sso.claims import sociallogin_amr
from portal.sso.config import sso_config
from portal.sso.services import amr_satisfies_mfa
from portal.staff_mfa import record_idp_mfa


class IdpAwareAuthenticateStage(AuthenticateStage):
    def handle(self) -> tuple:
        sociallogin = (self.login.signal_kwargs or {}).get("sociallogin")
        if sociallogin is not None and self.login.user is not None:
            amr = sociallogin_amr(sociallogin)
            if amr_satisfies_mfa(amr=amr, config=sso_config()):
                record_idp_mfa(self.request, self.login.user, amr=amr)
                return None, True
        return super().handle()
