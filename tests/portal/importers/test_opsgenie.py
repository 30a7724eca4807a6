"""Opsgenie import end to end: requests against a local fake of the REST API v2, then the 8-week
comparison with Opsgenie's own final timeline (written by hand in the fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from escalations.models import EscalationPolicy, Integration
from portal.importers.services import export_fetch, import_run
from rotations.models import Rotation, Team

from .conftest import NOW

pytestmark = pytest.mark.django_db


def _export(fake):
    return export_fetch(source="opsgenie", token=fake.key, now=NOW, base_url=fake.base_url)


def test_apply_matches_the_opsgenie_timeline_for_eight_weeks(fake_opsgenie, people, staff):
    export = _export(fake_opsgenie)
    assert any("/timeline?" in r and "interval=8" in r for r in fake_opsgenie.requests)
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    assert not [line for line in report.applied.lines if line.action == "refused"], report.applied.lines
    [comparison] = report.comparisons
    assert comparison.minutes == 80640
    assert comparison.disagreements == []
    team = Team.objects.get(name="Payments escalation")
    assert sorted(team.rotations.values_list("name", flat=True)) == ["Payments / Evenings", "Payments / Weekly"]
    policy = EscalationPolicy.objects.get(team=team)
    assert policy.repeat == 2
    steps = list(policy.steps.order_by("order"))
    assert [s.delay for s in steps] == [timedelta(minutes=10), timedelta(minutes=20)]
    assert [t.user for t in steps[1].targets.all()] == [people["bob"]]
    integration = Integration.objects.get(team=team)
    assert integration.kind == "opsgenie"
    [url] = report.applied.integrations
    assert url.url == "https://backstop.example.com/integrations/opsgenie/v2/alerts"
    unmapped = {(u.kind, u.name): u.reason for u in report.unmapped}
    assert "team" in unmapped[("rotation", "Payments / Follow the sun")]
    assert "next on-call" in unmapped[("escalation rule", "Payments escalation")]
    assert ("integration", "Support mailbox") in unmapped


def test_second_apply_creates_nothing_new(fake_opsgenie, people, staff):
    export = _export(fake_opsgenie)
    import_run(export=export, actor=staff, now=NOW, dry_run=False)
    count = Rotation.objects.count()
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    assert report.applied.count("created") == 0 and Rotation.objects.count() == count
    assert report.disagreeing_minutes == 0


def test_a_wrong_answer_is_seen(fake_opsgenie, people, staff):
    """Drop dan's first BST evening from Opsgenie's answer: those 240 minutes disagree."""
    export = _export(fake_opsgenie)
    periods = export["schedules"][0]["timeline"]["finalTimeline"]["rotations"][1]["periods"]
    periods[:] = [p for p in periods if p["startDate"] != "2027-03-28T17:00:00Z"]
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    assert report.comparisons[0].disagreeing_minutes == 240
