"""The claims each IdP user carries, from the user list the launcher wrote (users.json).

`email_verified` and `amr` are per user, so the tests can present verified and unverified e-mail
addresses and sign-ins with and without a second factor.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path


@cache
def _profiles() -> dict[str, dict]:
    path = Path(os.environ["OIDC_IDP_DATA_DIR"]) / "users.json"
    return {row["username"]: row for row in json.loads(path.read_text())}


def userinfo(claims: dict, user) -> dict:
    profile = _profiles()[user.username]
    claims["name"] = profile.get("name", "")
    claims["email"] = profile["email"]
    claims["email_verified"] = profile["email_verified"]
    return claims


def idtoken_amr(id_token: dict, user, **kwargs) -> dict:
    amr = _profiles()[user.username].get("amr")
    if amr:
        id_token["amr"] = amr
    return id_token
