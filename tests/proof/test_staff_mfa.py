"""Staff reach the portal, the admin and the API only from a session that passed a second factor.

A staff password alone opens nothing: the admin's own password form does not sign anyone in, a
session of an enrolled staff member without allauth's "mfa" record is ended, staff who never enrolled
are sent to enrol (portal, admin) or refused in JSON (API). Token requests are not asked: tokens are
minted only from a gated session.
"""

import time

import pytest
from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.test import Client
from django.urls import reverse

from tests.escalations.api_helpers import api_client
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory
PORTAL, ADMIN, API = "/", "/admin/", "/api/v1/teams/"


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def enrolled_staff() -> tuple:
    staff = StaffFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    return staff, secret


def session_without_mfa(user) -> Client:
    """A signed-in session that never passed the TOTP step (one from before the gate, or any path
    that skipped allauth's MFA stage)."""
    client = Client()
    client.force_login(user)
    session = client.session
    session.pop(AUTHENTICATION_METHODS_SESSION_KEY, None)
    session.save()
    return client


def sign_in(client: Client, user, secret: str, next_url: str = "") -> None:
    """The real sign-in: allauth's password form, then its TOTP form."""
    url = reverse("account_login") + (f"?next={next_url}" if next_url else "")
    response = client.post(url, {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate"), response
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302, response.content


def test_admin_password_form_does_not_sign_staff_in():
    staff, _ = enrolled_staff()
    client = Client()
    response = client.post(reverse("admin:login"), {"username": staff.email, "password": PASSWORD, "next": ADMIN})
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    response = client.get(ADMIN)
    assert response.status_code == 302 and "_auth_user_id" not in client.session


def test_admin_login_is_allauths_sign_in_with_totp():
    staff, secret = enrolled_staff()
    client = Client()
    response = client.get(reverse("admin:login") + "?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))

    sign_in(client, staff, secret, next_url="/admin/")
    assert client.get(ADMIN).status_code == 200
    assert client.get(PORTAL).status_code == 200
    response = client.get(API)
    assert response.status_code == 200, response.content


def test_password_without_the_code_gives_no_session():
    staff, _ = enrolled_staff()
    client = Client()
    client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert client.post(reverse("mfa_authenticate"), {"code": "000000"}).status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get(ADMIN).status_code == 302


@pytest.mark.parametrize("path", [PORTAL, ADMIN, reverse("account_email")])
def test_enrolled_staff_session_without_mfa_is_signed_out(path):
    staff, _ = enrolled_staff()
    client = session_without_mfa(staff)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    assert client.get(PORTAL).status_code == 302


def test_enrolled_staff_session_without_mfa_is_refused_by_the_api():
    staff, _ = enrolled_staff()
    client = session_without_mfa(staff)
    response = client.get(API)
    assert response.status_code == 403
    assert "did not pass two-factor authentication" in response.json()["message"]
    response = client.post(
        "/api/v1/tokens/", {"name": "x", "expires_at": "2099-01-01T00:00:00Z"}, content_type="application/json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize("path", [PORTAL, ADMIN])
def test_staff_without_an_authenticator_are_sent_to_enrol(path):
    client = Client()
    client.force_login(StaffFactory())
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_activate_totp"))


def test_staff_without_an_authenticator_are_refused_by_the_api():
    client = Client()
    client.force_login(StaffFactory())
    response = client.get(API)
    assert response.status_code == 403
    assert "two-factor authentication" in response.json()["message"]
    response = client.post(
        "/api/v1/tokens/", {"name": "x", "expires_at": "2099-01-01T00:00:00Z"}, content_type="application/json"
    )
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_enrolling_counts_as_the_sessions_second_factor():
    # A real commit: allauth announces the new authenticator on commit, inside the request, as in
    # production (a test transaction would run the callback after the response had saved the session).
    client = Client()
    staff = StaffFactory()
    client.post(reverse("account_login"), {"login": staff.email, "password": PASSWORD})
    assert client.get(PORTAL)["Location"].startswith(reverse("mfa_activate_totp"))
    # allauth asks for the password again before adding an authenticator.
    assert client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    secret = client.session["mfa.totp.secret"]
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302, response.content
    assert client.get(PORTAL).status_code == 200
    assert client.get(API).status_code == 200


def test_engineers_sessions_are_not_asked_for_mfa():
    client = Client()
    client.force_login(UserFactory())
    assert client.get(PORTAL).status_code == 200
    assert client.get(API).status_code == 200


def test_staff_tokens_are_not_asked_for_mfa():
    assert api_client(StaffFactory()).get(API).status_code == 200


def test_demo_without_the_gate_lets_staff_in(settings):
    settings.BACKSTOP_REQUIRE_STAFF_MFA = False
    client = Client()
    client.force_login(StaffFactory())
    assert client.get(PORTAL).status_code == 200
    assert client.get(ADMIN).status_code == 200
    assert client.get(API).status_code == 200
