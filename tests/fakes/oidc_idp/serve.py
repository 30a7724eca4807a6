"""Run the test-only OpenID Connect provider: `python -m tests.fakes.oidc_idp.serve DATA_DIR PORT`.

DATA_DIR holds `users.json` and `client.json` (written by the launcher); the provider keeps its
SQLite database there. It migrates, signs with a fresh RS256 key, registers the one client and the
users, then serves discovery, JWKS, authorize, token and userinfo on 127.0.0.1:PORT until killed.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path


def main(data_dir: str, port: int) -> None:
    os.environ["OIDC_IDP_DATA_DIR"] = data_dir
    os.environ["OIDC_IDP_SITE_URL"] = f"http://127.0.0.1:{port}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.fakes.oidc_idp.settings"
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from oidc_provider.models import Client, ResponseType

    call_command("migrate", verbosity=0)
    call_command("creatersakey", stdout=io.StringIO())
    spec = json.loads((Path(data_dir) / "client.json").read_text())
    client = Client.objects.create(
        name="Backstop",
        client_type="confidential",
        client_id=spec["client_id"],
        client_secret=spec["client_secret"],
        jwt_alg="RS256",
        require_consent=False,
        reuse_consent=True,
        redirect_uris=spec["redirect_uris"],
        scope=["openid", "profile", "email"],
    )
    client.response_types.add(ResponseType.objects.get(value="code"))
    for row in json.loads((Path(data_dir) / "users.json").read_text()):
        User.objects.create_user(username=row["username"], password=row["password"], email=row["email"])
    call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True, skip_checks=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
