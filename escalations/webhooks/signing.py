"""Signatures of outgoing webhooks, after Standard Webhooks (https://www.standardwebhooks.com).

Headers on every delivery:
- `webhook-id`: the event's id (`evt_…`), the same on every retry and "send again": deduplicate by it.
- `webhook-timestamp`: seconds since the epoch when this attempt was signed.
- `webhook-signature`: `v1,<base64 HMAC-SHA256>` over `"{id}.{timestamp}.{body}"` with the secret's key
  (the base64 part after `whsec_`); several, space-separated, while a rotated secret still signs.

Receivers recompute it over the raw body, compare in constant time, and refuse timestamps more than
five minutes from their clock (a replay). Pure: no Django.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def headers(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_ if s
        ),
    }


def verify(*, secret: str, headers: dict[str, str], body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does (the docs show the same code): True when one signature matches and the
    timestamp is within `tolerance` seconds of `now`. Header names are matched case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, sigs = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not msg_id or not stamp or not sigs or not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = signature(secret=secret, msg_id=msg_id, timestamp=int(stamp), body=body)
    return any(hmac.compare_digest(expected, candidate) for candidate in sigs.split())
