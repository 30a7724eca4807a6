"""Where a webhook may be sent: no server-side request forgery into the installation's own network.

A URL is refused when its host is, or resolves to, a private, loopback, link-local, multicast, reserved
or otherwise non-global address (IPv4-mapped IPv6 included), unless the installation allows private
targets (`BACKSTOP_WEBHOOKS_ALLOW_PRIVATE`). The check runs when a subscription is saved and again
before every delivery, and the delivery connects to the very address that was checked, so a DNS answer
that changes in between (rebinding) cannot steer it elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why, for the person who entered it."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (the Host header and the TLS server name)
    port: int
    path: str  # path and query
    address: str  # the checked address to connect to


def _address_refused(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"The host {host} could not be resolved.") from exc
    found: list[IpAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise UrlRefused(f"The host {host} could not be resolved.")
    return found


def url_parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path and query) of an http(s) URL without credentials; UrlRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("Enter a valid http:// or https:// URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("Enter a valid http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("Put no user name or password in the URL; verify the signature instead.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def target_resolve(url: str, *, allow_private: bool) -> Target:
    """Check the URL and pick the address to connect to (the first one resolved). Every address the
    name resolves to must be allowed: a name answering with one public and one private address is refused."""
    scheme, host, port, path = url_parse(url)
    addresses = _resolve(host, port)
    if not allow_private:
        for ip in addresses:
            if _address_refused(ip):
                raise UrlRefused(
                    f"{host} resolves to {ip}, a private, loopback or otherwise internal address: "
                    "webhooks go to public addresses only."
                )
    return Target(scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))
