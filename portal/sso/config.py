"""The SSO settings, read at call time (tests and operators change them without a restart of the logic)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

PROVIDER_ID = "sso"  # the allauth app id: URLs are /accounts/oidc/sso/login/ and .../login/callback/


@dataclass(frozen=True)
class SsoConfig:
    enabled: bool
    name: str
    auto_create: bool
    default_team_slug: str
    default_role: str
    required: bool
    break_glass_emails: frozenset[str]
    mfa_amr: frozenset[str]

    @property
    def login_url(self) -> str:
        return reverse("openid_connect_login", kwargs={"provider_id": PROVIDER_ID})


def sso_config() -> SsoConfig:
    enabled = bool(settings.BACKSTOP_OIDC_ISSUER)
    return SsoConfig(
        enabled=enabled,
        name=settings.BACKSTOP_OIDC_NAME,
        auto_create=settings.BACKSTOP_OIDC_AUTO_CREATE,
        default_team_slug=settings.BACKSTOP_OIDC_DEFAULT_TEAM,
        default_role=settings.BACKSTOP_OIDC_DEFAULT_ROLE,
        required=enabled and settings.BACKSTOP_OIDC_REQUIRED,
        break_glass_emails=frozenset(e.lower() for e in settings.BACKSTOP_OIDC_BREAK_GLASS_EMAILS),
        mfa_amr=frozenset(settings.BACKSTOP_OIDC_MFA_AMR),
    )
