"""Grafana OnCall import end to end: requests against a local fake of the public API, then the 8-week
comparison with OnCall's own final shifts (written by hand in the fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from escalations.models import EscalationPolicy, Integration
from portal.importers.services import export_fetch, import_run
from rotations.models import Override, Rotation, Team

from .conftest import NOW

pytestmark = pytest.mark.django_db


def _export(fake):
    return export_fetch(source="grafana_oncall", token=fake.token, now=NOW, base_url=fake.base_url)


def test_apply_matches_oncall_final_shifts_for_eight_weeks(fake_grafana, people, staff):
    export = _export(fake_grafana)
    assert [s["id"] for s in export["schedules"][0]["shifts"]] == ["OWEEK", "OWKND", "OOVER", "OSPLIT"]
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    assert not [line for line in report.applied.lines if line.action == "refused"], report.applied.lines
    [comparison] = report.comparisons
    assert comparison.minutes == 80640
    assert comparison.disagreements == []
    team = Team.objects.get(name="SRE escalation")
    assert sorted(team.rotations.values_list("name", flat=True)) == ["SRE / Weekend daytime", "SRE / Weekly"]
    assert Override.objects.filter(rotation__team=team, user=people["carol"]).count() == 2  # one per layer rotation
    policy = EscalationPolicy.objects.get(team=team)
    assert policy.repeat == 5
    steps = list(policy.steps.order_by("order"))
    assert [s.delay for s in steps] == [timedelta(minutes=10), timedelta(minutes=15)]
    assert [(t.kind, t.position) for t in steps[0].targets.all()] == [("position", "SRE")]
    assert sorted(t.user.email for t in steps[1].targets.all()) == ["alice@example.com", "bob@example.com"]
    integration = Integration.objects.get(team=team)
    assert integration.kind == "alertmanager"
    [url] = report.applied.integrations
    assert url.url == f"https://backstop.example.com/integrations/alertmanager/{integration.key}/"
    unmapped = {(u.kind, u.name): u.reason for u in report.unmapped}
    assert "OnCall counts only those days as turns" in unmapped[("shift", "SRE / Weekday nights")]
    assert ("integration", "Stackdriver") in unmapped


def test_second_apply_creates_nothing_new(fake_grafana, people, staff):
    export = _export(fake_grafana)
    import_run(export=export, actor=staff, now=NOW, dry_run=False)
    count = Rotation.objects.count()
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    assert report.applied.count("created") == 0 and Rotation.objects.count() == count
    assert report.disagreeing_minutes == 0


def test_a_wrong_answer_is_seen(fake_grafana, people, staff):
    """Say carol covers the whole Sunday of the DST change: the comparison names those extra minutes."""
    export = _export(fake_grafana)
    for item in export["schedules"][0]["final_shifts"]:
        if item["shift_start"].startswith("2027-03-14T14:00"):
            item["shift_start"] = "2027-03-14T13:00:00+00:00"
        if item["shift_end"].startswith("2027-03-14T14:00"):
            item["shift_end"] = "2027-03-14T13:00:00+00:00"
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    assert report.comparisons[0].disagreeing_minutes == 60


def test_dry_run_writes_nothing(fake_grafana, people, staff):
    report = import_run(export=_export(fake_grafana), actor=staff, now=NOW, dry_run=True)
    assert report.applied.count("created") > 0
    assert not Rotation.objects.exists() and not Team.objects.exists()


def test_the_page_reads_oncall_with_a_token_and_base_url(fake_grafana, people, staff, mfa_user):
    from django.test import Client

    client = Client()
    client.force_login(mfa_user(staff))
    response = client.post(
        "/import/", {"source": "grafana_oncall", "token": fake_grafana.token, "base_url": fake_grafana.base_url}
    )
    assert response.status_code == 200 and "SRE / Weekly" in response.content.decode()
    response = client.post("/import/", {"source": "grafana_oncall", "token": fake_grafana.token})
    assert response.status_code == 400 and "base URL" in response.content.decode()
    assert not Rotation.objects.exists()
