import subprocess
import sys

import pytest
from django.urls import reverse

from portal.demo import DEMO_PASSWORD, demo_seed
from portal.models import JobRun, User
from rotations.models import Rotation, Team
from tests.factories import StaffFactory, UserFactory


def test_healthz_answers_without_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_a_beat_that_never_ran(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert any("beat" in p for p in response.json()["problems"])


@pytest.mark.django_db
def test_readyz_ready_when_database_broker_and_beat_are_fine(client):
    from django.utils import timezone

    JobRun.objects.create(name="escalation-sweep", last_success_at=timezone.now())
    response = client.get("/readyz")
    assert response.json() == {"status": "ready", "problems": []}
    assert response.status_code == 200


@pytest.mark.django_db
def test_readyz_reports_a_stalled_beat(client, settings):
    from datetime import timedelta

    from django.utils import timezone

    JobRun.objects.create(name="escalation-sweep", last_success_at=timezone.now() - timedelta(minutes=10))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "last ran" in response.json()["problems"][0]


def _production_check(env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.production"}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


GOOD_PRODUCTION_ENV = {
    "SECRET_KEY": "k" * 20 + "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1",
    "DATABASE_URL": "postgres://backstop@db.internal/backstop",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "oncall.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://oncall.example.com",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
}


def test_production_settings_pass_check_deploy():
    result = _production_check(GOOD_PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_console_email_only_when_explicitly_allowed():
    env = GOOD_PRODUCTION_ENV | {"EMAIL_BACKEND": "", "BACKSTOP_ALLOW_CONSOLE_EMAIL": "true"}
    result = _production_check(env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": ""}, "CELERY_BROKER_URL"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "PostgreSQL"),
        ({"EMAIL_BACKEND": ""}, "EMAIL_BACKEND"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "BACKSTOP_ALLOW_CONSOLE_EMAIL"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}, "password-reset links"),
    ],
)
def test_production_settings_refuse_to_start_when_unsafe(missing, message):
    result = _production_check(GOOD_PRODUCTION_ENV | missing)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.django_db
def test_demo_seed_is_realistic_and_idempotent():
    summary = demo_seed()
    assert summary.created
    assert Team.objects.count() >= 3
    for rotation in Rotation.objects.all():
        assert rotation.positions == ["primary", "secondary"]
        assert rotation.eras.get().participant_links.count() >= 3
        assert rotation.team.escalation_policy.steps.count() == 3
    users = User.objects.count()
    again = demo_seed()
    assert not again.created
    assert User.objects.count() == users
    assert User.objects.get(email="staff@example.com").check_password(DEMO_PASSWORD)


@pytest.mark.django_db
def test_demo_engineer_jonas_is_primary_on_payments_this_week():
    from datetime import UTC, date, datetime

    from rotations.selectors import team_oncall_users

    demo_seed(today=date(2026, 11, 25))  # a Wednesday
    payments = Team.objects.get(slug="payments")
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert [u.email for u in team_oncall_users(team=payments, position="primary", at=at)] == ["jonas@example.com"]


@pytest.mark.django_db
def test_sign_in_with_email_and_password(client):
    user = UserFactory(email="pat@example.com")
    response = client.post(reverse("account_login"), {"login": "pat@example.com", "password": "pw-for-tests-1"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_sign_in_is_rate_limited(client):
    UserFactory(email="pat@example.com")
    for _ in range(6):
        client.post(reverse("account_login"), {"login": "pat@example.com", "password": "wrong"})
    # Once the failure budget is spent, even the right password is refused for a while.
    blocked = client.post(reverse("account_login"), {"login": "pat@example.com", "password": "pw-for-tests-1"})
    assert b"Too many failed login attempts" in blocked.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_public_signup_is_closed(client):
    response = client.get(reverse("account_signup"))
    assert b"closed" in response.content.lower() or response.status_code in (302, 403)


@pytest.mark.django_db
def test_staff_without_totp_are_sent_to_enrol(client, mfa_user):
    staff = StaffFactory()
    client.force_login(staff)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_activate_totp"))
    assert client.get("/admin/").status_code == 302
    mfa_user(staff)
    client.force_login(staff)
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_engineers_need_no_totp(client):
    client.force_login(UserFactory())
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_password_reset_sends_mail(client, mailoutbox):
    UserFactory(email="pat@example.com")
    client.post(reverse("account_reset_password"), {"email": "pat@example.com"})
    assert len(mailoutbox) == 1
    assert "pat@example.com" in mailoutbox[0].to


@pytest.mark.django_db
def test_demo_has_integrations_a_heartbeat_and_lived_in_incidents(django_capture_on_commit_callbacks):
    from datetime import UTC, datetime, timedelta
    from io import StringIO

    from django.core.management import call_command

    from escalations.models import Heartbeat, Incident, Integration, OutboxMessage, Page, TimelineEvent

    now = datetime(2026, 5, 6, 10, 30, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        summary = demo_seed(now=now)
    assert callbacks  # pages go out after commit, not inside the seed's transaction
    for team in Team.objects.all():
        assert sorted(team.integrations.values_list("kind", flat=True)) == ["alertmanager", "pagerduty"]
    assert Heartbeat.objects.get().last_ping_at == now
    urls = {(t, n): u for t, n, u in summary.integrations}
    am = Integration.objects.get(team__name="Payments", kind="alertmanager")
    assert urls[("Payments", "Prometheus Alertmanager")] == (
        f"https://backstop.example.com/integrations/alertmanager/{am.key}/"
    )
    by_team = {i.team.name: i for i in Incident.objects.select_related("team")}
    assert {t: i.status for t, i in by_team.items()} == {
        "Payments": "triggered",
        "Platform": "acknowledged",
        "Customer Support": "resolved",
    }
    assert by_team["Payments"].created_at == now - timedelta(minutes=7)
    assert by_team["Payments"].source == "alert" and "CheckoutLatencyHigh" in by_team["Payments"].title
    assert TimelineEvent.objects.filter(incident=by_team["Platform"], kind="note", message__contains="WAL").exists()
    resolved = by_team["Customer Support"]
    assert resolved.resolved_at.date() == (now - timedelta(days=1)).date()
    # After commit the engine pages the triggered incident (as the Celery task would, by hand here).
    from escalations.incidents.advance import incident_advance

    incident_advance(incident_id=by_team["Payments"].pk, now=now)
    assert Page.objects.filter(incident=by_team["Payments"]).exists()
    assert not OutboxMessage.objects.exists()
    # Idempotent, and the command prints where to send alerts.
    out = StringIO()
    call_command("demo_seed", stdout=out)
    assert Incident.objects.count() == 3 and Integration.objects.count() == 6 and Heartbeat.objects.count() == 1
    text = out.getvalue()
    assert f"/integrations/alertmanager/{am.key}/" in text and "routing_key" in text
    assert "/integrations/heartbeat/" in text


@pytest.mark.django_db
def test_staff_navigation_links_the_call_log(client, mfa_user):
    staff = mfa_user(StaffFactory())
    client.force_login(staff)
    assert b'href="/calls/"' in client.get("/").content
    client.force_login(UserFactory())
    assert b'href="/calls/"' not in client.get("/").content
