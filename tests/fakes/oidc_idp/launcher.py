"""Start and stop the test-only OpenID Connect provider (django-oidc-provider) in a second process.

Backstop's allauth talks to it over real HTTP on the loopback: discovery, JWKS (RS256), authorize,
token and userinfo. Each IdP user carries its own `email_verified` and `amr` claims.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class IdpUser:
    username: str
    email: str
    email_verified: bool = True
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    name: str = ""
    password: str = "idp-password-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OidcIdp:
    """One running provider. `issuer` is what Backstop's BACKSTOP_OIDC_ISSUER names."""

    client_id = "backstop-test"
    client_secret = "backstop-test-secret-" + "s" * 20

    def __init__(self, *, users: list[IdpUser], redirect_uris: list[str]) -> None:
        self.users = {user.username: user for user in users}
        self._dir = tempfile.TemporaryDirectory(prefix="oidc-idp-")
        data = Path(self._dir.name)
        (data / "users.json").write_text(json.dumps([asdict(user) for user in users]))
        (data / "client.json").write_text(
            json.dumps(
                {"client_id": self.client_id, "client_secret": self.client_secret, "redirect_uris": redirect_uris}
            )
        )
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base_url}/openid"
        self._log = open(data / "idp.log", "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.oidc_idp.serve", str(data), str(self.port)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the test OIDC provider did not start:\n{self.log()}")

    def log(self) -> str:
        return (Path(self._dir.name) / "idp.log").read_text(errors="replace")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        self._dir.cleanup()


def backstop_sso_settings(idp: OidcIdp, **overrides: object) -> dict[str, object]:
    """Backstop's settings for signing in through `idp` (what BACKSTOP_OIDC_* would give), plus overrides."""
    values: dict[str, object] = {
        "BACKSTOP_OIDC_ISSUER": idp.issuer,
        "BACKSTOP_OIDC_CLIENT_ID": idp.client_id,
        "BACKSTOP_OIDC_CLIENT_SECRET": idp.client_secret,
        "BACKSTOP_OIDC_NAME": "Example IdP",
        "BACKSTOP_OIDC_AUTO_CREATE": False,
        "BACKSTOP_OIDC_DEFAULT_TEAM": "",
        "BACKSTOP_OIDC_DEFAULT_ROLE": "viewer",
        "BACKSTOP_OIDC_REQUIRED": False,
        "BACKSTOP_OIDC_BREAK_GLASS_EMAILS": [],
        "BACKSTOP_OIDC_MFA_AMR": [],
    }
    values.update(overrides)
    values["SOCIALACCOUNT_PROVIDERS"] = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": values["BACKSTOP_OIDC_NAME"],
                    "client_id": idp.client_id,
                    "secret": idp.client_secret,
                    "settings": {"server_url": idp.issuer},
                }
            ],
        }
    }
    return values
