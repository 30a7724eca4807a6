"""Single sign-on through a real OpenID Connect provider on the loopback (portal/sso/).

The provider is django-oidc-provider in its own process (tests/fakes/oidc_idp/): discovery, JWKS
(RS256), authorize, token and userinfo over real HTTP, each IdP user with its own `email_verified`
and `amr` claims. The person's browser is `SsoBrowser`: Django's test client for Backstop (CSRF
enforced), a requests session for the IdP, following the redirects between them by hand. Backstop's
allauth fetches discovery, exchanges the code and reads userinfo from the provider itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django.urls import reverse

from portal.models import User
from rotations.models import AuditEntry, Membership
from tests.factories import MembershipFactory, StaffFactory, TeamFactory, UserFactory
from tests.fakes.oidc_idp.launcher import IdpUser, OidcIdp, backstop_sso_settings
from tests.proof.test_staff_mfa import PASSWORD, totp_code

pytestmark = pytest.mark.django_db

CALLBACK = "http://testserver/accounts/oidc/sso/login/callback/"
IDP_USERS = [
    IdpUser("eng", "eng@example.com", name="Erin Engineer"),
    IdpUser("eng-upper", "Casey@Example.COM"),
    IdpUser("newbie", "newbie@example.com", name="Nora Newbie"),
    # Someone who registered a colleague's address at the IdP without proving it is theirs.
    IdpUser("mallory", "victim@example.com", email_verified=False),
    IdpUser("ghost", "ghost@example.com", email_verified=False),
    IdpUser("gone", "gone@example.com"),
    IdpUser("boss-otp", "boss-otp@example.com", amr=["pwd", "otp"]),
    IdpUser("boss-pwd", "boss-pwd@example.com", amr=["pwd"]),
]


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcIdp]:
    provider = OidcIdp(users=IDP_USERS, redirect_uris=[CALLBACK])
    yield provider
    provider.stop()


@pytest.fixture
def sso(settings, idp):
    """SSO configured against the loopback provider; call it again with overrides (AUTO_CREATE=True, ...)."""

    def configure(**overrides: object) -> None:
        values = backstop_sso_settings(idp, **{f"BACKSTOP_OIDC_{k}": v for k, v in overrides.items()})
        for name, value in values.items():
            setattr(settings, name, value)

    configure()
    return configure


class SsoBrowser:
    """One person's browser: Backstop via the Django test client, the IdP via requests."""

    def __init__(self, idp: OidcIdp) -> None:
        self.idp = idp
        self.backstop = Client(enforce_csrf_checks=True)
        self.http = requests.Session()
        self.idp_pages: list[str] = []

    def _csrf(self) -> str:
        return self.backstop.cookies["csrftoken"].value

    def login_page(self, next_url: str = ""):
        return self.backstop.get(reverse("account_login") + (f"?next={next_url}" if next_url else ""))

    def sign_in(self, username: str, next_url: str = ""):
        """Click "Sign in with Example IdP", sign in at the IdP, come back: Backstop's answer to the callback."""
        page = self.login_page(next_url)
        assert b"Sign in with Example IdP" in page.content
        data = {"csrfmiddlewaretoken": self._csrf(), "process": "login"}
        if next_url:
            data["next"] = next_url
        response = self.backstop.post(reverse("openid_connect_login", kwargs={"provider_id": "sso"}), data)
        assert response.status_code == 302, response.content
        authorize = response["Location"]
        assert authorize.startswith(self.idp.issuer + "/authorize"), authorize
        assert "code_challenge=" in authorize  # PKCE
        callback = self._at_idp(authorize, username)
        assert callback.startswith(CALLBACK), callback
        parts = urlsplit(callback)
        return self.backstop.get(f"{parts.path}?{parts.query}")

    def _at_idp(self, url: str, username: str) -> str:
        """Follow the IdP's redirects, signing in on its login form; returns the URL back to Backstop."""
        for _ in range(10):
            if url.startswith("http://testserver/"):
                return url
            response = self.http.get(url, allow_redirects=False)
            self.idp_pages.append(url)
            if response.status_code == 200 and 'name="password"' in response.text:
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
                assert token is not None
                user = self.idp.users[username]
                response = self.http.post(
                    url,
                    data={
                        "csrfmiddlewaretoken": token.group(1),
                        "username": user.username,
                        "password": user.password,
                        "next": re.search(r'name="next" value="([^"]*)"', response.text).group(1).replace("&amp;", "&"),
                    },
                    allow_redirects=False,
                )
            assert response.status_code == 302, (response.status_code, response.text[:2000], self.idp.log()[-3000:])
            location = response.headers["Location"]
            url = location if location.startswith("http") else self.idp.base_url + location
        raise AssertionError(f"no way back to Backstop: {self.idp_pages}")

    def signed_in_user(self) -> User | None:
        user_id = self.backstop.session.get("_auth_user_id")
        return User.objects.get(pk=user_id) if user_id else None

    def password_sign_in(self, email: str, password: str = PASSWORD):
        self.login_page()
        return self.backstop.post(
            reverse("account_login"),
            {"csrfmiddlewaretoken": self._csrf(), "login": email, "password": password},
        )


@pytest.fixture
def person(idp) -> SsoBrowser:
    return SsoBrowser(idp)


def _refusal(response, reason: str) -> None:
    assert response.status_code == 403, response.content
    assert f'data-reason="{reason}"'.encode() in response.content, response.content


# ------------------------------------------------------------------------------------------ matching


def test_existing_user_is_matched_by_verified_email_and_linked(sso, person):
    engineer = MembershipFactory(user__email="eng@example.com").user
    response = person.sign_in("eng", next_url="/teams/")
    assert response.status_code == 302 and response["Location"] == "/teams/"
    assert person.signed_in_user() == engineer
    assert person.backstop.get("/teams/").status_code == 200
    account = SocialAccount.objects.get(user=engineer)
    assert account.provider == "sso" and account.uid
    engineer.refresh_from_db()
    assert engineer.has_usable_password()  # staff made the account: its password is not wiped

    # The second time the link (the IdP's `sub`) finds the account, whatever the e-mail match would say.
    again = SsoBrowser(person.idp)
    assert again.sign_in("eng").status_code == 302
    assert again.signed_in_user() == engineer
    assert SocialAccount.objects.filter(user=engineer).count() == 1


def test_email_match_ignores_case(sso, person):
    casey = UserFactory(email="casey@example.com")
    assert person.sign_in("eng-upper").status_code == 302
    assert person.signed_in_user() == casey


def test_unknown_user_is_refused_without_auto_create(sso, person):
    response = person.sign_in("newbie")
    _refusal(response, "no_account")
    assert b"There is no Backstop account for newbie@example.com" in response.content
    assert person.signed_in_user() is None
    assert not User.objects.filter(email="newbie@example.com").exists()
    assert not SocialAccount.objects.exists()


def test_unknown_user_is_created_into_the_default_team_and_role(sso, person):
    team = TeamFactory(slug="everyone")
    sso(AUTO_CREATE=True, DEFAULT_TEAM="everyone", DEFAULT_ROLE="viewer")
    response = person.sign_in("newbie")
    assert response.status_code == 302 and response["Location"] == reverse("portal:now")
    user = person.signed_in_user()
    assert user is not None and user.email == "newbie@example.com" and user.full_name == "Nora Newbie"
    assert not user.is_staff and not user.has_usable_password()
    membership = Membership.objects.get(user=user)
    assert membership.team == team and membership.role == "viewer"
    assert AuditEntry.objects.filter(team=team, object_type="rotations.membership", actor=None).count() == 1
    assert person.backstop.get(reverse("portal:team", args=[team.slug])).status_code == 200

    # A second sign-in opens the same account, creates nothing.
    again = SsoBrowser(person.idp)
    assert again.sign_in("newbie").status_code == 302
    assert again.signed_in_user() == user
    assert User.objects.filter(email="newbie@example.com").count() == 1


def test_auto_create_without_a_default_team_creates_a_member_of_nothing(sso, person):
    sso(AUTO_CREATE=True)
    assert person.sign_in("newbie").status_code == 302
    user = person.signed_in_user()
    assert user is not None and not Membership.objects.filter(user=user).exists()


# ------------------------------------------------------------------------- unverified e-mail, inactive


def test_unverified_email_never_takes_over_an_existing_account(sso, person):
    victim = UserFactory(email="victim@example.com")
    response = person.sign_in("mallory")
    _refusal(response, "unverified")
    assert b"has not verified that victim@example.com is yours" in response.content
    assert person.signed_in_user() is None
    assert not SocialAccount.objects.exists()
    victim.refresh_from_db()
    assert victim.has_usable_password()


def test_unverified_email_creates_nothing_even_with_auto_create(sso, person):
    sso(AUTO_CREATE=True)
    _refusal(person.sign_in("ghost"), "unverified")
    assert not User.objects.filter(email="ghost@example.com").exists()


def test_deactivated_account_is_refused_and_stays_deactivated(sso, person):
    gone = UserFactory(email="gone@example.com", is_active=False)
    _refusal(person.sign_in("gone"), "inactive")
    gone.refresh_from_db()
    assert not gone.is_active and not SocialAccount.objects.exists()


def test_linked_account_deactivated_later_is_refused(sso, person):
    engineer = UserFactory(email="eng@example.com")
    assert person.sign_in("eng").status_code == 302
    engineer.is_active = False
    engineer.save(update_fields=["is_active"])
    _refusal(SsoBrowser(person.idp).sign_in("eng"), "inactive")


# --------------------------------------------------------------------------------------- staff MFA


def test_staff_with_accepted_amr_passes_mfa_without_a_code(sso, person):
    sso(MFA_AMR=["mfa", "otp", "hwk"])
    boss = StaffFactory(email="boss-otp@example.com")  # never enrolled TOTP: the IdP's factor counts
    response = person.sign_in("boss-otp", next_url="/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert person.signed_in_user() == boss
    assert person.backstop.get("/admin/").status_code == 200
    assert person.backstop.get("/api/v1/teams/").status_code == 200


def test_staff_without_accepted_amr_must_type_their_code(sso, person):
    sso(MFA_AMR=["mfa", "otp", "hwk"])
    boss = StaffFactory(email="boss-pwd@example.com")
    secret = generate_totp_secret()
    TOTP.activate(boss, secret)
    response = person.sign_in("boss-pwd")
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert person.signed_in_user() is None
    client = person.backstop
    response = client.post(
        reverse("mfa_authenticate"), {"code": totp_code(secret), "csrfmiddlewaretoken": person._csrf()}
    )
    assert response.status_code == 302
    assert person.signed_in_user() == boss and client.get("/admin/").status_code == 200


def test_amr_is_ignored_unless_the_operator_accepts_it(sso, person):
    boss = StaffFactory(email="boss-otp@example.com")  # the IdP says "otp", but MFA_AMR is empty
    response = person.sign_in("boss-otp", next_url="/admin/")
    assert response.status_code == 302
    assert person.signed_in_user() == boss
    # Signed in, but the staff gate sends an unenrolled staff member to enrol before anything opens.
    response = person.backstop.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_activate_totp"))
    assert person.backstop.get(response["Location"]).status_code == 200  # the SSO sign-in is recent enough
    assert person.backstop.get("/api/v1/teams/").status_code == 403


# ------------------------------------------------------------------------------------ SSO required


def test_required_sso_refuses_passwords_but_not_the_break_glass_account(sso, idp):
    engineer = UserFactory(email="eng@example.com")
    breakglass = StaffFactory(email="root@example.com")
    secret = generate_totp_secret()
    TOTP.activate(breakglass, secret)
    sso(REQUIRED=True, BREAK_GLASS_EMAILS=["root@example.com", "eng@example.com"])

    page = SsoBrowser(idp).login_page()
    assert b"<details" in page.content and b"Emergency sign-in" in page.content

    refused = SsoBrowser(idp)
    response = refused.password_sign_in(engineer.email)  # listed, but not staff: no exception
    assert response.status_code == 200 and b"signs in with Example IdP" in response.content
    assert refused.signed_in_user() is None
    response = refused.password_sign_in("nobody@example.com")
    assert response.status_code == 200 and b"signs in with Example IdP" in response.content

    root = SsoBrowser(idp)
    response = root.password_sign_in(breakglass.email)
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    response = root.backstop.post(
        reverse("mfa_authenticate"), {"code": totp_code(secret), "csrfmiddlewaretoken": root._csrf()}
    )
    assert response.status_code == 302 and root.signed_in_user() == breakglass

    # The identity provider still signs the engineer in.
    via_idp = SsoBrowser(idp)
    assert via_idp.sign_in("eng").status_code == 302 and via_idp.signed_in_user() == engineer


def test_required_sso_sends_no_password_reset_mail_but_to_break_glass(sso, person, mailoutbox):
    UserFactory(email="eng@example.com")
    StaffFactory(email="root@example.com")
    sso(REQUIRED=True, BREAK_GLASS_EMAILS=["root@example.com"])
    client = person.backstop
    person.login_page()
    for email in ("eng@example.com", "root@example.com"):
        response = client.post(
            reverse("account_reset_password"), {"email": email, "csrfmiddlewaretoken": person._csrf()}
        )
        assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [["root@example.com"]]


def test_required_sso_keeps_api_tokens_working(sso, person):
    from tests.escalations.api_helpers import api_client

    engineer = MembershipFactory(user__email="eng@example.com").user
    sso(REQUIRED=True)
    assert api_client(engineer).get("/api/v1/teams/").status_code == 200


def test_connecting_an_idp_identity_to_another_account_is_refused(sso, person):
    other = UserFactory(email="someone-else@example.com")
    person.backstop.force_login(other)
    assert person.backstop.get(reverse("socialaccount_connections")).status_code == 200
    response = person.backstop.post(
        reverse("openid_connect_login", kwargs={"provider_id": "sso"}),
        {"csrfmiddlewaretoken": person._csrf(), "process": "connect"},
    )
    assert response.status_code == 302
    callback = person._at_idp(response["Location"], "eng")
    parts = urlsplit(callback)
    _refusal(person.backstop.get(f"{parts.path}?{parts.query}"), "connect")
    assert not SocialAccount.objects.exists()


# ------------------------------------------------------------------------------- not configured


def test_without_sso_the_sign_in_page_has_no_button(client):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    assert b"Sign in with" not in response.content and b"Emergency sign-in" not in response.content
    assert client.post(reverse("openid_connect_login", kwargs={"provider_id": "sso"})).status_code == 404


def test_enrolled_staff_with_accepted_amr_is_not_asked_for_the_code(sso, person):
    sso(MFA_AMR=["otp"])
    boss = StaffFactory(email="boss-otp@example.com")
    TOTP.activate(boss, generate_totp_secret())
    response = person.sign_in("boss-otp")
    assert response.status_code == 302 and response["Location"] == reverse("portal:now")
    assert person.signed_in_user() == boss and person.backstop.get("/admin/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_staff_signed_in_through_the_idp_can_enrol_totp_when_sso_is_required(sso, person):
    """No password Backstop accepts and no authenticator yet: the fresh IdP sign-in lets them enrol.

    A real commit, as in tests/proof/test_staff_mfa.py: allauth announces the authenticator on commit.
    """
    boss = StaffFactory(email="boss-pwd@example.com")  # has a password, but it is refused
    sso(REQUIRED=True, MFA_AMR=["mfa"])
    assert person.sign_in("boss-pwd").status_code == 302
    client = person.backstop
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_activate_totp"))
    page = client.get(response["Location"])
    assert page.status_code == 200
    response = client.post(
        response["Location"],
        {"code": totp_code(page.context["form"].secret), "csrfmiddlewaretoken": person._csrf()},
    )
    assert response.status_code == 302, response.content
    assert person.signed_in_user() == boss and client.get("/admin/").status_code == 200
