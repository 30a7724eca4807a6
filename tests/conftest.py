import pytest

from tests.factories import MembershipFactory, StaffFactory, TeamFactory, UserFactory


@pytest.fixture
def team(db):
    return TeamFactory()


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def role_users(db, team):
    """One user per role on `team`, plus staff and an outsider: the permission matrix's rows."""
    users = {"staff": StaffFactory(), "outsider": UserFactory()}
    for role in ("manager", "engineer", "viewer"):
        users[role] = MembershipFactory(team=team, role=role).user
    return users


@pytest.fixture
def mfa_user():
    """Give a user a TOTP authenticator so the staff MFA gate lets them through."""
    from allauth.mfa.models import Authenticator

    def enrol(user):
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})
        return user

    return enrol
