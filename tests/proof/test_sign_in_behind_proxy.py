"""Sign-in rate limits count per client, also behind a TLS proxy, once the operator says how to find it.

Without the setting every request seems to come from the proxy, so a few bad logins from anywhere
lock everyone out. With TRUSTED_PROXY_COUNT (or TRUSTED_CLIENT_IP_HEADER) two clients behind the
same proxy have separate budgets, and a client cannot pick its own address by sending a header.
"""

import subprocess
import sys

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tests.portal.test_foundation import GOOD_PRODUCTION_ENV

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"  # every request reaches Django from the proxy
BUDGET = 3


@pytest.fixture
def ip_rate_limit(settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": f"{BUDGET}/m/ip"}
    cache.clear()
    yield
    cache.clear()


def bad_logins(client: Client, email: str, forwarded_for: str | None, count: int) -> list[bool]:
    """Whether each attempt was refused by the rate limit (rather than for the wrong password)."""
    headers = {"REMOTE_ADDR": PROXY}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    refused = []
    for _ in range(count):
        response = client.post(reverse("account_login"), {"login": email, "password": "wrong"}, **headers)
        refused.append(response.status_code == 429 or b"Too many failed login attempts" in response.content)
    return refused


def test_behind_a_proxy_clients_are_limited_separately(settings, ip_rate_limit):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    a, b = UserFactory(), UserFactory()
    assert bad_logins(Client(), a.email, "198.51.100.7", BUDGET + 1)[-1] is True
    assert bad_logins(Client(), b.email, "203.0.113.9", 1) == [False]
    # The proxy appends the address it saw; a client's own X-Forwarded-For entries are not trusted.
    assert bad_logins(Client(), b.email, "203.0.113.99, 198.51.100.7", 1) == [True]


def test_a_client_header_set_by_the_proxy(settings, ip_rate_limit):
    settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER = "X-Real-IP"
    a, b = UserFactory(), UserFactory()
    headers = {"REMOTE_ADDR": PROXY}
    for _ in range(BUDGET):
        Client().post(
            reverse("account_login"), {"login": a.email, "password": "wrong"}, HTTP_X_REAL_IP="198.51.100.7", **headers
        )
    blocked = Client().post(
        reverse("account_login"), {"login": a.email, "password": "wrong"}, HTTP_X_REAL_IP="198.51.100.7", **headers
    )
    other = Client().post(
        reverse("account_login"), {"login": b.email, "password": "wrong"}, HTTP_X_REAL_IP="203.0.113.9", **headers
    )
    assert b"Too many failed login attempts" in blocked.content or blocked.status_code == 429
    assert b"Too many failed login attempts" not in other.content and other.status_code != 429


def test_by_default_connections_are_direct_and_the_header_is_ignored(ip_rate_limit):
    a, b = UserFactory(), UserFactory()
    bad_logins(Client(), a.email, "198.51.100.7", BUDGET)
    # Same peer address: X-Forwarded-For from an untrusted peer changes nothing.
    assert bad_logins(Client(), b.email, "203.0.113.9", 1) == [True]


def _production_setting(env: dict, expression: str) -> str:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.production"}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", f"from django.conf import settings; print(repr(({expression})))"],
        env=base | GOOD_PRODUCTION_ENV | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_production_reads_the_trusted_proxy_from_the_environment():
    expression = "settings.ALLAUTH_TRUSTED_PROXY_COUNT, settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER"
    assert _production_setting({}, expression) == "(0, None)"
    assert _production_setting({"TRUSTED_PROXY_COUNT": "1"}, expression) == "(1, None)"
    assert _production_setting({"TRUSTED_CLIENT_IP_HEADER": "X-Real-IP"}, expression) == "(0, 'X-Real-IP')"
