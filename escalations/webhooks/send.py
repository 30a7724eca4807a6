"""One HTTP POST of a signed webhook body: to the address checked just before (no DNS rebinding), with
short timeouts, no redirects followed, and only the start of the answer read. Never inside a database
transaction: a slow receiver must not hold row locks or a connection's transaction open."""

from __future__ import annotations

from dataclasses import dataclass

import urllib3
from django.db import connection

from escalations.webhooks.addresses import Target, UrlRefused, target_resolve

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
RESPONSE_SNIPPET = 1000
USER_AGENT = "Backstop-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    body: str = ""
    error: str = ""


def _pool(target: Target) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, total=CONNECT_TIMEOUT + READ_TIMEOUT)
    if target.scheme == "https":
        # Connect to the checked address; verify the certificate for the name in the URL (and send it as SNI).
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False, maxsize=1)


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def webhook_post(*, url: str, body: bytes, headers: dict[str, str], allow_private: bool) -> Outcome:
    if connection.in_atomic_block:
        raise RuntimeError("A webhook is never sent inside a database transaction.")
    try:
        target = target_resolve(url, allow_private=allow_private)
    except UrlRefused as exc:
        return Outcome(ok=False, error=str(exc))
    all_headers = {
        **headers,
        "Host": _host_header(target),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    pool = _pool(target)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=all_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            snippet = response.read(RESPONSE_SNIPPET, decode_content=False)
        finally:
            response.release_conn()
            response.close()
    except urllib3.exceptions.HTTPError as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        pool.close()
    status = response.status
    # PostgreSQL text cannot hold NUL; the log shows a replacement character instead.
    text = snippet.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    if 200 <= status < 300:
        return Outcome(ok=True, status=status, body=text)
    reason = "a redirect, which is not followed" if 300 <= status < 400 else "not a 2xx answer"
    return Outcome(ok=False, status=status, body=text, error=f"HTTP {status}: {reason}")
