"""PagerDuty import end to end: the real `pagerduty` client against a local fake of the REST API,
then the 8-week comparison with PagerDuty's own rendered final schedule (written by hand in the fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from escalations.models import EscalationPolicy, Integration
from portal.importers.compare import answers_compare
from portal.importers.services import export_fetch, import_run
from portal.models import ContactMethod, ImportedObject, NotificationRule, User
from rotations.models import AuditEntry, Override, Rotation, RotationEra, Team

from .conftest import NOW

pytestmark = pytest.mark.django_db


def _export(fake):
    return export_fetch(
        source="pagerduty", token=fake.token, now=NOW, base_url=fake.base_url, verify=fake.client_context()
    )


def _counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count()
        for m in (
            User,
            ContactMethod,
            NotificationRule,
            Team,
            Rotation,
            RotationEra,
            Override,
            EscalationPolicy,
            Integration,
            ImportedObject,
            AuditEntry,
        )
    }


def test_fetch_uses_the_real_client_with_the_read_only_token(fake_pagerduty, people):
    export = _export(fake_pagerduty)
    assert [u["id"] for u in export["users"]] == ["PALICE", "PBOB", "PCAROL", "PDAN", "PERIN"]  # paged, 2 a page
    assert export["schedules"][0]["overrides"][0]["id"] == "POV1"
    assert any(p.startswith("/users?") and "include%5B%5D=contact_methods" in p for p in fake_pagerduty.requests)
    assert export["since"] == "2027-03-01T00:00:00+00:00" and export["until"] == "2027-04-26T00:00:00+00:00"


def test_wrong_token_is_refused(fake_pagerduty):
    with pytest.raises(ValidationError, match="refused"):
        export_fetch(
            source="pagerduty",
            token="wrong",
            now=NOW,
            base_url=fake_pagerduty.base_url,
            verify=fake_pagerduty.client_context(),
        )


def test_dry_run_writes_nothing_and_says_what_it_would_do(fake_pagerduty, people, staff):
    export = _export(fake_pagerduty)
    before = _counts()
    report = import_run(export=export, actor=staff, now=NOW, dry_run=True)
    assert _counts() == before
    created = {(line.kind, line.name) for line in report.applied.lines if line.action == "created"}
    assert ("team", "Platform") in created
    assert ("rotation", "Platform Primary / Weekly") in created
    assert ("escalation policy", "Platform") in created
    assert ("integration", "Checkout API / Prometheus") in created
    assert [line.name for line in report.applied.lines if line.action == "invited"] == ["erin@example.com"]
    unmapped = {(u.kind, u.name) for u in report.unmapped}
    assert ("contact method", "alice@example.com: iPhone") in unmapped
    assert ("integration", "Checkout API / Email") in unmapped
    assert report.comparisons == []


def test_apply_matches_pagerduty_minute_by_minute_for_eight_weeks(fake_pagerduty, people, staff):
    report = import_run(export=_export(fake_pagerduty), actor=staff, now=NOW, dry_run=False)
    assert not [line for line in report.applied.lines if line.action == "refused"], report.applied.lines
    [comparison] = report.comparisons
    assert comparison.minutes == 8 * 7 * 24 * 60
    assert comparison.disagreements == []
    assert comparison.disagreeing_minutes == 0

    team = Team.objects.get(name="Platform")
    assert sorted(r.name for r in team.rotations.all()) == [
        "Platform Primary / Friday night",
        "Platform Primary / Wednesday daytime",
        "Platform Primary / Weekly",
    ]
    policy = EscalationPolicy.objects.get(team=team)
    assert policy.repeat == 2
    steps = list(policy.steps.order_by("order"))
    assert [s.delay for s in steps] == [timedelta(minutes=15), timedelta(minutes=10)]
    assert [(t.kind, t.position) for t in steps[0].targets.all()] == [("position", "Platform Primary")]
    assert [t.user for t in steps[1].targets.all()] == [people["alice"]]
    erin = User.objects.get(email="erin@example.com")
    assert not erin.is_active and not erin.has_usable_password()
    alice = people["alice"]
    assert sorted(alice.contact_methods.values_list("kind", "value")) == [
        ("email", "alice@example.com"),
        ("sms", "+4915112345678"),
        ("voice", "+4915112345678"),
    ]
    assert sorted((r.contact_method.kind, r.delay, r.urgency) for r in alice.notification_rules.all()) == [
        ("email", timedelta(0), "low"),
        ("sms", timedelta(0), "high"),
        ("voice", timedelta(minutes=5), "high"),
    ]
    [url] = report.applied.integrations
    integration = Integration.objects.get(name="Checkout API / Prometheus")
    assert (url.url, url.routing_key) == (
        "https://backstop.example.com/integrations/pagerduty/v2/enqueue",
        integration.key,
    )
    assert integration.policy == policy
    assert AuditEntry.objects.filter(object_type="rotations.rotation").count() == 3  # through the services, with audit


def test_second_apply_creates_nothing_new(fake_pagerduty, people, staff):
    export = _export(fake_pagerduty)
    import_run(export=export, actor=staff, now=NOW, dry_run=False)
    before = _counts()
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    assert report.applied.count("created") == 0
    assert _counts() == before
    assert report.disagreeing_minutes == 0


def test_a_wrong_import_is_seen_by_the_comparison(fake_pagerduty, people, staff):
    """The comparison can fail: move one handoff an hour and it names exactly those minutes."""
    export = _export(fake_pagerduty)
    entries = export["schedules"][0]["final_schedule"]["rendered_schedule_entries"]
    # PagerDuty's answer as it would be if the handoff after the DST change stayed at 08:00 UTC.
    for entry in entries:
        if entry["end"] == "2027-03-29T07:00:00Z":
            entry["end"] = "2027-03-29T08:00:00Z"
        if entry["start"] == "2027-03-29T07:00:00Z":
            entry["start"] = "2027-03-29T08:00:00Z"
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    [comparison] = report.comparisons
    assert comparison.disagreeing_minutes == 60
    [d] = comparison.disagreements
    assert (d.source, d.backstop) == (["carol@example.com"], ["alice@example.com"])


def test_answers_compare_counts_overlaps_and_gaps():
    from datetime import UTC, datetime

    t = lambda h: datetime(2027, 1, 1, h, tzinfo=UTC)  # noqa: E731
    found = answers_compare(
        source=[(t(0), t(4), "a"), (t(4), t(8), "b")],
        backstop=[(t(0), t(5), "a"), (t(5), t(7), "b")],
        since=t(0),
        until=t(8),
    )
    assert [(d.start.hour, d.end.hour, d.source, d.backstop) for d in found] == [
        (4, 5, ["b"], ["a"]),
        (7, 8, ["b"], []),
    ]


def test_an_override_where_no_layer_is_on_is_named(fake_pagerduty, people, staff):
    """PagerDuty puts an override's taker on call even where no layer is; Backstop cannot, and says so."""
    export = _export(fake_pagerduty)
    schedule = export["schedules"][0]
    # The weekly layer covers 09:00-17:00 only; the override falls at night, outside every layer.
    schedule["schedule_layers"][0]["restrictions"] = [
        {"type": "daily_restriction", "start_time_of_day": "09:00:00", "duration_seconds": 28800}
    ]
    schedule["overrides"].append(
        {"id": "POV3", "start": "2027-03-30T01:00:00Z", "end": "2027-03-30T02:00:00Z", "user": {"id": "PBOB"}}
    )
    schedule["final_schedule"]["rendered_schedule_entries"] = [
        {"start": "2027-03-30T01:00:00Z", "end": "2027-03-30T02:00:00Z", "user": {"id": "PBOB"}}
    ]
    report = import_run(export=export, actor=staff, now=NOW, dry_run=False)
    [comparison] = report.comparisons
    night = [d for d in comparison.disagreements if d.source == ["bob@example.com"]]
    assert [(d.start.isoformat(), d.end.isoformat(), d.backstop) for d in night] == [
        ("2027-03-30T01:00:00+00:00", "2027-03-30T02:00:00+00:00", [])
    ]
    assert any("a Backstop override only replaces a scheduled shift" in note for note in comparison.notes)
