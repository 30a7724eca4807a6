import pytest

from tests.factories import MembershipFactory, StaffFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _intake_process_state():
    """Each test starts as a fresh web process: no leased rate tokens, no recent drain kick."""
    from escalations.intake import kick
    from escalations.intake import views as intake_views

    intake_views.rate_leases.reset()
    kick.kick_debounce.reset()
    _verification_counters_clear()
    yield


def _verification_counters_clear() -> None:
    """Daily verification-send counters live in the cache: each test starts with none sent."""
    from django.core.cache import cache

    cache.clear()


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


@pytest.fixture(autouse=True)
def _force_login_completes_mfa(monkeypatch):
    """`Client.force_login` stands for a finished sign-in, which for a user with TOTP includes the code.

    The staff MFA gate (portal.staff_mfa) asks the session for allauth's "mfa" record, so a test
    session of an enrolled user gets one, as allauth's MFA stage would write it. Tests of sessions
    without it remove it (tests/proof/test_staff_mfa.py); the real sign-in is tested there too.
    """
    from allauth.account.internal.flows.login import record_authentication
    from allauth.mfa.models import Authenticator
    from django.http import HttpRequest
    from django.test.client import ClientMixin

    original = ClientMixin._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if totp is not None:
            request = HttpRequest()
            request.session = self.session
            record_authentication(request, user, "mfa", id=totp.pk, type=totp.type)
            request.session.save()

    monkeypatch.setattr(ClientMixin, "_login", _login)


@pytest.fixture
def celery_worker():
    """A real Celery worker (solo pool) on this test slot's own Redis keys, emptied first.

    Messages left by an earlier test (ETA retries restored at shutdown, unacked deliveries) must
    not run inside the next test, so every key under this slot's prefix is deleted.
    """
    import redis
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from config.celery import app

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def wipe():
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)

    wipe()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker
    wipe()


def pytest_configure(config):
    # Registered here, not in pyproject.toml: a pyproject change makes every checkout's bin/test
    # reinstall into the shared virtualenv.
    config.addinivalue_line(
        "markers", "sqlite: needs the local demo's SQLite database (--ds=config.settings.test_sqlite)"
    )


def pytest_terminal_summary(terminalreporter):
    """Say loudly, at the end, when the browser journeys could not run."""
    from tests.browser.conftest import chromium_path

    if chromium_path() is None:
        terminalreporter.write_sep(
            "!",
            "browser tests SKIPPED: no chromium binary (apt-get install chromium, or set BACKSTOP_CHROMIUM)",
            red=True,
            bold=True,
        )
