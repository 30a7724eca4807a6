"""portal.sso.services.sso_user_resolve over every combination of what the IdP and Backstop know.

The end-to-end flow is tests/portal/test_sso.py; here the decision table itself, exhaustively: an
unverified or missing e-mail never opens an account it is not already linked to, a deactivated
account never opens, and accounts are created only for verified unknown addresses with AUTO_CREATE.
"""

from __future__ import annotations

import itertools

import pytest

from portal.models import User
from portal.sso.config import SsoConfig
from portal.sso.services import IdpIdentity, SsoRefused, password_sign_in_allowed, sso_user_resolve
from rotations.models import Membership
from tests.factories import StaffFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _config(**overrides) -> SsoConfig:
    values = {
        "enabled": True,
        "name": "Example IdP",
        "auto_create": False,
        "default_team_slug": "",
        "default_role": "viewer",
        "required": False,
        "break_glass_emails": frozenset(),
        "mfa_amr": frozenset(),
    }
    values.update(overrides)
    return SsoConfig(**values)


CASES = [
    case
    for case in itertools.product(
        [False, True],  # linked: the IdP's sub is already linked to the account
        ["", "pat@example.com", "PAT@Example.com"],  # e-mail the IdP sent
        [False, True],  # email_verified
        [False, True],  # a Backstop account has that address
        [False, True],  # that account is active
        [False, True],  # AUTO_CREATE
    )
    if case[3] or not case[0]  # a link always points at an account
]


@pytest.mark.parametrize(("linked", "email", "verified", "exists", "active", "auto_create"), CASES)
def test_decision_table(linked, email, verified, exists, active, auto_create):
    TeamFactory(slug="everyone")
    account = UserFactory(email="pat@example.com", is_active=active) if exists else None
    config = _config(auto_create=auto_create, default_team_slug="everyone")
    identity = IdpIdentity(email=email, email_verified=verified)
    users_before = User.objects.count()

    try:
        user, created = sso_user_resolve(linked_user=account if linked else None, identity=identity, config=config)
    except SsoRefused as refusal:
        user, created, reason = None, False, refusal.reason
    else:
        reason = ""

    if linked or (email and verified and exists):
        assert (user, created, reason) == ((account, False, "") if active else (None, False, "inactive"))
    elif not email:
        assert reason == "no_email"
    elif not verified:
        assert reason == "unverified"
    elif auto_create:
        assert created and user is not None and user.email == "pat@example.com" and not user.is_staff
        assert Membership.objects.get(user=user).role == "viewer"
    else:
        assert reason == "no_account"
    assert User.objects.count() == users_before + (1 if created else 0)


def test_password_sign_in_when_sso_is_required():
    StaffFactory(email="root@example.com")
    UserFactory(email="eng@example.com")
    StaffFactory(email="left@example.com", is_active=False)
    optional = _config()
    required = _config(
        required=True, break_glass_emails=frozenset({"root@example.com", "eng@example.com", "left@example.com"})
    )
    assert password_sign_in_allowed(email="eng@example.com", config=optional)
    assert password_sign_in_allowed(email=" Root@Example.com ", config=required)
    assert not password_sign_in_allowed(email="eng@example.com", config=required)  # listed, not staff
    assert not password_sign_in_allowed(email="left@example.com", config=required)  # deactivated
    assert not password_sign_in_allowed(email="other@example.com", config=required)
    assert not password_sign_in_allowed(email="", config=required)
