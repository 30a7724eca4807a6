"""Reading what the IdP asserted from allauth's SocialLogin (userinfo and the decoded ID token)."""

from __future__ import annotations

from typing import Any

from portal.sso.services import IdpIdentity


def _claims(sociallogin: Any) -> dict:
    # allauth keeps both answers; like allauth's provider, prefer userinfo, which is usually fuller.
    data = sociallogin.account.extra_data or {}
    return data.get("userinfo") or data.get("id_token") or {}


def sociallogin_identity(sociallogin: Any) -> IdpIdentity:
    """E-mail and its verification as allauth parsed them (`email_verified` may be a string at some IdPs)."""
    addresses = list(sociallogin.email_addresses or [])
    primary = next((a for a in addresses if a.primary), addresses[0] if addresses else None)
    name = str(_claims(sociallogin).get("name") or "")
    if primary is None or not primary.email:
        return IdpIdentity(email="", email_verified=False, name=name)
    return IdpIdentity(email=primary.email.strip().lower(), email_verified=bool(primary.verified), name=name)


def sociallogin_amr(sociallogin: Any) -> list[str]:
    """The ID token's `amr` (authentication methods references, RFC 8176); userinfo never carries it."""
    amr = ((sociallogin.account.extra_data or {}).get("id_token") or {}).get("amr") or []
    if isinstance(amr, str):
        amr = [amr]
    return [str(value) for value in amr]
