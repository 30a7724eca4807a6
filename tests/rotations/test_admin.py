"""Admin saves of exclusions/overrides/rotations are validated and audited like the API's."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from rotations.models import AuditEntry, Exclusion, Override
from tests.factories import OverrideFactory, StaffFactory
from tests.rotations.conftest import MON

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_mfa(client, mfa_user):
    admin = mfa_user(StaffFactory(is_superuser=True))
    client.force_login(admin)
    client.admin = admin
    return client


def _dt(prefix, dt):
    local = dt.astimezone(ZoneInfo("Europe/Berlin"))  # the admin reads input in the staff user's zone
    return {f"{prefix}_0": local.strftime("%Y-%m-%d"), f"{prefix}_1": local.strftime("%H:%M:%S")}


def test_admin_override_conflict_rejected(admin_client_mfa, roster):
    rotation, people = roster
    first = OverrideFactory(rotation=rotation, user=people[0], start=MON, end=MON + timedelta(hours=2))
    data = {
        "rotation": rotation.pk,
        "user": people[2].pk,
        "position": "primary",
        "reason": "",
        **_dt("start", MON + timedelta(hours=1)),
        **_dt("end", MON + timedelta(hours=3)),
    }
    res = admin_client_mfa.post("/admin/rotations/override/add/", data)
    assert res.status_code == 200
    assert f"via override #{first.pk}" in res.content.decode()
    assert Override.objects.count() == 1

    data.update(_dt("start", MON + timedelta(hours=2)))
    res = admin_client_mfa.post("/admin/rotations/override/add/", data)
    assert res.status_code == 302
    new = Override.objects.exclude(pk=first.pk).get()
    entry = AuditEntry.objects.get(object_type="rotations.override", object_id=str(new.pk))
    assert entry.actor == admin_client_mfa.admin and entry.changes["position"] == [None, "primary"]

    res = admin_client_mfa.post(f"/admin/rotations/override/{new.pk}/delete/", {"post": "yes"})
    assert res.status_code == 302 and not Override.objects.filter(pk=new.pk).exists()
    assert AuditEntry.objects.filter(object_type="rotations.override", action="delete").count() == 1


def test_admin_exclusion_validated_and_audited(admin_client_mfa, roster):
    _, people = roster
    data = {
        "user": people[0].pk,
        "kind": "sick",
        "reason": "flu",
        **_dt("start", MON),
        **_dt("end", MON - timedelta(hours=1)),
    }
    res = admin_client_mfa.post("/admin/rotations/exclusion/add/", data)
    assert res.status_code == 200 and "End must be after start." in res.content.decode()
    data.update(_dt("end", MON + timedelta(days=1)))
    assert admin_client_mfa.post("/admin/rotations/exclusion/add/", data).status_code == 302
    exclusion = Exclusion.objects.get()
    data.update({"reason": "flu, worse"})
    assert admin_client_mfa.post(f"/admin/rotations/exclusion/{exclusion.pk}/change/", data).status_code == 302
    actions = AuditEntry.objects.filter(object_type="rotations.exclusion").order_by("id")
    assert [(a.action, a.changes.get("reason")) for a in actions] == [
        ("create", [None, "flu"]),
        ("update", ["flu", "flu, worse"]),
    ]


def test_admin_rotation_validates_positions_and_zone(admin_client_mfa, roster):
    rotation, _ = roster
    base = {
        "team": rotation.team.pk,
        "name": "Payments",
        "time_zone": "Mars/Base",
        "positions": '["a", "a"]',
        "eras-TOTAL_FORMS": "0",
        "eras-INITIAL_FORMS": "0",
    }
    res = admin_client_mfa.post(f"/admin/rotations/rotation/{rotation.pk}/change/", base)
    assert res.status_code == 200 and "Unknown time zone" in res.content.decode()
    base.update({"time_zone": "Europe/Berlin", "positions": '["primary", "backup"]'})
    res = admin_client_mfa.post(f"/admin/rotations/rotation/{rotation.pk}/change/", base)
    assert res.status_code == 302, res.content.decode()[:2000]
    rotation.refresh_from_db()
    assert rotation.positions == ["primary", "backup"]
    entry = AuditEntry.objects.filter(object_type="rotations.rotation", action="update").get()
    assert entry.changes == {"positions": [["primary", "secondary"], ["primary", "backup"]]}
