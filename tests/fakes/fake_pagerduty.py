"""A fake of PagerDuty's REST API v2 (read side), serving a recorded account over HTTPS.

The real `pagerduty` client talks to it (it insists on https://, so the fake makes itself a
self-signed certificate; pass `fake.ca_path` as the client's `verify`). It checks the
`Authorization: Token token=<key>` header, pages list endpoints with limit/offset/more as PagerDuty
does, and records every request path.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.vendor_api import FakeVendorApi


def _self_signed(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def _overlaps(item: dict, since: str | None, until: str | None) -> bool:
    def t(value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (until is None or t(item["start"]) < t(until)) and (since is None or t(item["end"]) > t(since))


class FakePagerDuty(FakeVendorApi):
    name = "fake-pagerduty"
    scheme = "https"  # the client refuses anything else
    refusal = (401, {"error": {"message": "Unauthorized", "code": 2006}})

    def __init__(self, account: dict, *, token: str = "read-only-key", page_size: int = 2) -> None:
        super().__init__(account, page_size=page_size)
        self.token = token
        self._dir = tempfile.TemporaryDirectory()
        self.ca_path, key_path = _self_signed(Path(self._dir.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_path, key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def authorized(self, authorization: str | None) -> bool:
        return authorization == f"Token token={self.token}"

    def client_context(self) -> ssl.SSLContext:
        """What a client passes as `verify` to trust this fake's certificate."""
        return ssl.create_default_context(cafile=self.ca_path)

    def stop(self) -> None:
        super().stop()
        self._dir.cleanup()

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        one = {k: v[0] for k, v in query.items()}
        parts = [p for p in path.split("/") if p]
        a = self.account
        if parts == ["users"]:
            includes = set(query.get("include[]", []))
            users = []
            for user in a["users"]:
                user = dict(user)
                if "contact_methods" not in includes:
                    user["contact_methods"] = [
                        {"id": c["id"], "type": c["type"] + "_reference"} for c in user["contact_methods"]
                    ]
                if "notification_rules" not in includes:
                    user["notification_rules"] = [
                        {"id": r["id"], "type": r["type"] + "_reference"} for r in user["notification_rules"]
                    ]
                users.append(user)
            return self._page("users", users, one)
        if parts == ["schedules"]:
            return self._page(
                "schedules", [{"id": s["id"], "type": "schedule", "name": s["name"]} for s in a["schedules"]], one
            )
        if len(parts) == 2 and parts[0] == "schedules":
            schedule = next((s for s in a["schedules"] if s["id"] == parts[1]), None)
            if schedule is None:
                return 404, {"error": {"message": "Not Found", "code": 2100}}
            schedule = json.loads(json.dumps(schedule))
            entries = schedule["final_schedule"]["rendered_schedule_entries"]
            schedule["final_schedule"]["rendered_schedule_entries"] = [
                e for e in entries if _overlaps(e, one.get("since"), one.get("until"))
            ]
            return 200, {"schedule": schedule}
        if len(parts) == 3 and parts[0] == "schedules" and parts[2] == "overrides":
            overrides = [
                o for o in a["overrides"].get(parts[1], []) if _overlaps(o, one.get("since"), one.get("until"))
            ]
            return 200, {"overrides": overrides}
        if parts == ["escalation_policies"]:
            return self._page("escalation_policies", a["escalation_policies"], one)
        if parts == ["services"]:
            services = a["services"]
            if "integrations" not in query.get("include[]", []):
                services = [
                    {
                        **s,
                        "integrations": [{"id": i["id"], "type": i["type"] + "_reference"} for i in s["integrations"]],
                    }
                    for s in services
                ]
            return self._page("services", services, one)
        return 404, {"error": {"message": "Not Found", "code": 2100}}

    def _page(self, key: str, items: list, query: dict[str, str]) -> tuple[int, Any]:
        offset = int(query.get("offset", 0))
        limit = min(int(query.get("limit", self.page_size)), self.page_size)
        page = items[offset : offset + limit]
        return 200, {key: page, "limit": limit, "offset": offset, "more": offset + limit < len(items), "total": None}
