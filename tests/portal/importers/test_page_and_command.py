"""The staff page and the management command drive the same import: dry run, apply, report."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from portal.importers.services import export_fetch
from portal.models import ImportedObject
from rotations.models import Rotation, Team
from tests.factories import MembershipFactory, StaffFactory, UserFactory

from .conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(staff, mfa_user):
    return mfa_user(staff)


@pytest.fixture
def export_bytes(fake_pagerduty) -> bytes:
    export = export_fetch(
        source="pagerduty",
        token=fake_pagerduty.token,
        now=NOW,
        base_url=fake_pagerduty.base_url,
        verify=fake_pagerduty.client_context(),
    )
    return json.dumps(export).encode()


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_dry_run_from_a_file_then_apply(staff, people, export_bytes):
    client = _client(staff)
    response = client.post("/import/", {"file": SimpleUploadedFile("export.json", export_bytes, "application/json")})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Dry run: nothing has been written yet" in body
    assert "would create" in body and "Platform Primary / Weekly" in body
    assert "push_notification_contact_method has no Backstop equivalent" in body
    assert not Rotation.objects.exists() and not ImportedObject.objects.exists()
    ticket = response.context["ticket"]
    response = client.post("/import/apply", {"ticket": ticket})
    assert response.status_code == 200
    body = response.content.decode()
    assert "0 of 80640 minutes disagree" in body
    assert "https://backstop.example.com/integrations/pagerduty/v2/enqueue" in body
    assert Rotation.objects.count() == 3


def test_staff_dry_run_with_a_token_reads_the_api(staff, people, fake_pagerduty, settings):
    settings.IMPORTER_BASE_URLS = {"pagerduty": fake_pagerduty.base_url}
    settings.IMPORTER_CA_BUNDLE = fake_pagerduty.ca_path
    response = _client(staff).post("/import/", {"source": "pagerduty", "token": fake_pagerduty.token})
    assert response.status_code == 200
    assert "Platform Primary / Weekly" in response.content.decode()
    response = _client(staff).post("/import/", {"source": "pagerduty", "token": "wrong"})
    assert response.status_code == 400
    assert "pagerduty refused or could not be reached" in response.content.decode()


def test_a_base_url_the_client_cannot_use_is_a_clear_400(staff):
    client = _client(staff)
    for source, base_url in [
        ("pagerduty", "http://127.0.0.1:9"),
        ("pagerduty", "ftp://api.pagerduty.com"),
        ("grafana_oncall", "oncall.example.com"),
        ("opsgenie", "https://"),
    ]:
        response = client.post("/import/", {"source": source, "token": "t", "base_url": base_url})
        assert response.status_code == 400, (source, base_url)
        assert f"Give the {source} API&#x27;s base URL as" in response.content.decode(), (source, base_url)


def test_bad_file_is_a_clear_400(staff):
    client = _client(staff)
    response = client.post("/import/", {"file": SimpleUploadedFile("x.json", b"{nope", "application/json")})
    assert response.status_code == 400 and "not JSON" in response.content.decode()
    response = client.post(
        "/import/", {"file": SimpleUploadedFile("x.json", b'{"source": "acme"}', "application/json")}
    )
    assert response.status_code == 400 and "no known source" in response.content.decode()
    response = client.post(
        "/import/",
        {
            "file": SimpleUploadedFile(
                "x.json",
                json.dumps(
                    {
                        "source": "pagerduty",
                        "since": "2027-01-01T00:00Z",
                        "until": "2027-02-01T00:00Z",
                        "schedules": [{"id": 1}],
                    }
                ).encode(),
                "application/json",
            )
        },
    )
    assert response.status_code == 400 and "not in the expected shape" in response.content.decode()


def test_non_staff_are_refused(people, export_bytes):
    team = Team.objects.create(name="Other", slug="other")
    manager = MembershipFactory(team=team, role="manager").user
    for user in (UserFactory(), manager):
        client = _client(user)
        assert client.get("/import/").status_code == 403
        upload = SimpleUploadedFile("export.json", export_bytes, "application/json")
        assert client.post("/import/", {"file": upload}).status_code == 403
        assert client.post("/import/apply", {"ticket": "x"}).status_code == 403
    assert not ImportedObject.objects.exists()


def test_apply_needs_the_same_staff_members_dry_run(staff, people, export_bytes, mfa_user):
    response = _client(staff).post("/import/", {"file": SimpleUploadedFile("e.json", export_bytes, "application/json")})
    other_staff = StaffFactory()
    mfa_user(other_staff)
    response = _client(other_staff).post("/import/apply", {"ticket": response.context["ticket"]})
    assert response.status_code == 400
    assert not Rotation.objects.exists()


def test_command_dry_run_then_apply_twice(staff, people, export_bytes, tmp_path):
    path = tmp_path / "export.json"
    path.write_bytes(export_bytes)
    out = io.StringIO()
    call_command("import_oncall", "--file", str(path), "--actor", staff.email, stdout=out)
    assert "Dry run from pagerduty" in out.getvalue() and "would create" in out.getvalue()
    assert not Rotation.objects.exists()
    out = io.StringIO()
    call_command("import_oncall", "--file", str(path), "--actor", staff.email, "--apply", stdout=out)
    assert "0 of 80640 minutes disagree" in out.getvalue()
    out = io.StringIO()
    call_command("import_oncall", "--file", str(path), "--actor", staff.email, "--apply", stdout=out)
    assert " created " not in out.getvalue() and "0 of 80640 minutes disagree" in out.getvalue()


def test_command_refuses_a_non_staff_actor(people, tmp_path):
    with pytest.raises(CommandError, match="not an active staff member"):
        call_command("import_oncall", "--file", str(tmp_path / "x.json"), "--actor", "alice@example.com")
