"""Single sign-on in a real browser: Backstop's button, the identity provider's own login page, and back.

The provider is django-oidc-provider in its own process on the loopback (tests/fakes/oidc_idp/); the
HTTP-level matrix of cases is tests/portal/test_sso.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from portal.models import User
from tests.factories import MembershipFactory, TeamFactory
from tests.fakes.oidc_idp.launcher import IdpUser, OidcIdp, backstop_sso_settings

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def idp(live_server) -> Iterator[OidcIdp]:
    provider = OidcIdp(
        users=[
            IdpUser("erin", "erin@example.com", name="Erin Engineer"),
            IdpUser("nora", "nora@example.com", name="Nora Newcomer"),
            IdpUser("mallory", "erin.old@example.com", email_verified=False),
        ],
        redirect_uris=[f"{live_server.url}/accounts/oidc/sso/login/callback/"],
    )
    yield provider
    provider.stop()


@pytest.fixture
def sso(settings, idp):
    def configure(**overrides: object) -> None:
        for name, value in backstop_sso_settings(idp, **overrides).items():
            setattr(settings, name, value)

    configure()
    return configure


def _through_the_idp(b, idp: OidcIdp, username: str) -> None:
    b.goto("/")
    expect(b.page).to_have_url(re.compile(r"/accounts/login/"))
    b.page.get_by_role("button", name="Sign in with Example IdP").click()
    expect(b.page).to_have_url(re.compile("^" + re.escape(idp.base_url) + "/login/"))
    expect(b.page.get_by_role("heading", name="Example IdP")).to_be_visible()
    b.page.get_by_label("IdP user name").fill(username)
    b.page.get_by_label("IdP password").fill(idp.users[username].password)
    b.page.get_by_role("button", name="Continue").click()
    b.page.wait_for_load_state()


def test_sign_in_with_the_identity_provider(browser_at, idp, sso):
    erin = MembershipFactory(user__email="erin@example.com", user__full_name="Erin Engineer").user
    b = browser_at("desktop")
    b.goto("/accounts/login/")
    b.shot("login-with-sso")
    _through_the_idp(b, idp, "erin")
    expect(b.page.get_by_role("heading", name="Now", exact=True)).to_be_visible()
    expect(b.page).to_have_url(re.compile("^" + re.escape(b.base_url) + "/"))
    b.shot("signed-in")
    assert erin.socialaccount_set.get().provider == "sso"
    assert not b.console_errors


def test_newcomer_is_created_and_unverified_email_is_refused(browser_at, idp, sso):
    TeamFactory(slug="everyone", name="Everyone")
    MembershipFactory(user__email="erin.old@example.com")
    sso(BACKSTOP_OIDC_AUTO_CREATE=True, BACKSTOP_OIDC_DEFAULT_TEAM="everyone")

    b = browser_at("phone")
    _through_the_idp(b, idp, "nora")
    expect(b.page.get_by_role("heading", name="Now", exact=True)).to_be_visible()
    nora = User.objects.get(email="nora@example.com")
    assert nora.memberships.get().team.slug == "everyone"

    b = browser_at("phone")
    _through_the_idp(b, idp, "mallory")
    expect(b.page.get_by_role("heading", name="Sign-in refused")).to_be_visible()
    expect(b.page.get_by_role("alert")).to_contain_text("has not verified that erin.old@example.com is yours")
    b.shot("refused-unverified")
    b.goto("/")
    expect(b.page).to_have_url(re.compile(r"/accounts/login/"))


def test_sso_required_folds_the_password_form_away(browser_at, idp, sso):
    sso(BACKSTOP_OIDC_REQUIRED=True, BACKSTOP_OIDC_BREAK_GLASS_EMAILS=["root@example.com"])
    b = browser_at("phone")
    b.goto("/accounts/login/")
    expect(b.page.get_by_role("button", name="Sign in with Example IdP")).to_be_visible()
    password = b.page.get_by_label("Password", exact=True)
    expect(password).to_be_hidden()
    b.page.get_by_text("Emergency sign-in for administrators").click()
    expect(password).to_be_visible()
    b.shot("sso-required")
    assert not b.console_errors
