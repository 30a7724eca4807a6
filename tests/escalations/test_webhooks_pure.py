"""The pure parts of outgoing webhooks: signatures (Standard Webhooks), address checks, backoff."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escalations.webhooks import addresses, dispatch, signing

SECRET = signing.secret_new()


@given(body=st.binary(max_size=2000), stamp=st.integers(min_value=0, max_value=2**33))
def test_a_signed_body_verifies_and_any_changed_byte_does_not(body, stamp):
    headers = signing.headers(secrets_=[SECRET], msg_id="evt_1", timestamp=stamp, body=body)
    assert signing.verify(secret=SECRET, headers=headers, body=body, now=stamp)
    tampered = body + b" " if not body else bytes([body[0] ^ 1]) + body[1:]
    assert not signing.verify(secret=SECRET, headers=headers, body=tampered, now=stamp)
    assert not signing.verify(secret=signing.secret_new(), headers=headers, body=body, now=stamp)
    assert not signing.verify(secret=SECRET, headers={**headers, "webhook-id": "evt_2"}, body=body, now=stamp), (
        "the id is signed too"
    )


def test_the_signature_is_the_standard_webhooks_one():
    """Computed here by hand, as the docs' snippet and the standardwebhooks libraries do."""
    body = b'{"id":"evt_1"}'
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, b"evt_1.1700000000." + body, hashlib.sha256).digest()).decode()
    headers = signing.headers(secrets_=[SECRET], msg_id="evt_1", timestamp=1700000000, body=body)
    assert headers == {"webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": f"v1,{expected}"}


def test_old_or_future_timestamps_are_refused():
    headers = signing.headers(secrets_=[SECRET], msg_id="evt_1", timestamp=1000, body=b"{}")
    assert signing.verify(secret=SECRET, headers=headers, body=b"{}", now=1000 + 300)
    assert not signing.verify(secret=SECRET, headers=headers, body=b"{}", now=1000 + 301)
    assert not signing.verify(secret=SECRET, headers=headers, body=b"{}", now=1000 - 301)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "127.0.0.1",
        "127.8.8.8",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "192.168.0.10",
        "172.16.5.4",
        "100.64.1.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "fc00::1",
        "::ffff:10.0.0.1",
        "240.0.0.1",
        "::",
    ],
)
def test_internal_addresses_are_refused_and_allowed_only_by_the_setting(address):
    url = f"http://[{address}]/" if ":" in address else f"http://{address}/"
    with pytest.raises(addresses.UrlRefused):
        addresses.target_resolve(url, allow_private=False)
    assert ipaddress.ip_address(addresses.target_resolve(url, allow_private=True).address) == ipaddress.ip_address(
        address
    )


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address):
    url = f"https://[{address}]:8443/x?y=1" if ":" in address else f"https://{address}:8443/x?y=1"
    target = addresses.target_resolve(url, allow_private=False)
    assert (target.scheme, target.port, target.path, target.address) == ("https", 8443, "/x?y=1", address)


@given(attempts=st.integers(min_value=1, max_value=200), seed=st.integers())
def test_backoff_grows_stays_within_jitter_and_never_exceeds_an_hour_and_a_fifth(attempts, seed):
    wait = dispatch.backoff(attempts, random.Random(seed))
    base = dispatch.BACKOFF[min(attempts, len(dispatch.BACKOFF)) - 1]
    assert base * (1 - dispatch.JITTER) <= wait <= base * (1 + dispatch.JITTER)
    assert wait <= timedelta(hours=1.2)
