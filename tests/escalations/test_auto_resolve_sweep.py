"""Auto-resolve through the database and the real sweep, not only in the pure engine."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from escalations.incidents import advance, services, tasks
from escalations.models import Incident, Page, TimelineEvent
from tests.escalations.test_services import MIN, person, policy_for, trigger
from tests.factories import T0, TeamFactory

Kind = TimelineEvent.Kind


def _pending(incident: Incident) -> int:
    return Page.objects.filter(incident=incident, status=Page.Status.PENDING).count()


@pytest.mark.django_db
def test_a_triggered_incident_is_auto_resolved_by_the_sweep():
    team = TeamFactory()
    alice = person(sms_at=0, voice_at=40)
    policy_for(team, (60, [alice]), auto_resolve_after=timedelta(minutes=30))
    incident = trigger(team)
    assert _pending(incident) == 2  # SMS now, voice at +40
    assert advance.escalations_sweep(now=T0 + 29 * MIN) == 0
    assert advance.escalations_sweep(now=T0 + 30 * MIN) == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    assert incident.resolved_at == T0 + 30 * MIN
    assert incident.resolved_by is None
    assert incident.next_action_at is None
    assert _pending(incident) == 0
    assert Page.objects.filter(incident=incident, channel="voice").get().status == Page.Status.CANCELED
    resolved = incident.timeline.get(kind=Kind.RESOLVED)
    assert resolved.at == T0 + 30 * MIN and "Auto-resolved" in resolved.message
    # Nothing is left for later sweeps, and a second sweep writes nothing.
    assert advance.escalations_sweep(now=T0 + 600 * MIN) == 0
    assert incident.timeline.filter(kind=Kind.RESOLVED).count() == 1


@pytest.mark.django_db
def test_an_acknowledged_incident_is_auto_resolved_by_the_sweep():
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]), auto_resolve_after=timedelta(hours=2), ack_timeout=timedelta(hours=8))
    incident = trigger(team)
    services.incident_acknowledge(incident=incident, by=alice, via="web", now=T0 + 1 * MIN)
    incident.refresh_from_db()
    assert incident.next_action_at == T0 + 120 * MIN
    assert advance.escalations_sweep(now=T0 + 119 * MIN) == 0
    assert advance.escalations_sweep(now=T0 + 121 * MIN) == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    assert incident.resolved_at == T0 + 121 * MIN
    assert incident.acknowledged_by == alice  # who acknowledged stays on record
    assert incident.timeline.filter(kind=Kind.RESOLVED).count() == 1


@pytest.mark.django_db
def test_an_exhausted_incident_is_auto_resolved_at_its_deadline():
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]), auto_resolve_after=timedelta(minutes=90))
    incident = trigger(team)
    assert advance.escalations_sweep(now=T0 + 5 * MIN) == 1  # exhausted, aimed at the deadline
    incident.refresh_from_db()
    assert incident.exhausted and incident.next_action_at == T0 + 90 * MIN
    assert advance.escalations_sweep(now=T0 + 90 * MIN) == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED


@pytest.mark.django_db
def test_a_new_alert_after_auto_resolve_opens_a_new_incident():
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]), auto_resolve_after=timedelta(minutes=30))
    incident = trigger(team, dedup_key="disk")
    advance.escalations_sweep(now=T0 + 31 * MIN)
    again = services.incident_trigger(team=team, title="Disk full", dedup_key="disk", now=T0 + 32 * MIN)
    assert again.created and again.incident.pk != incident.pk


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_beat_sweep_task_auto_resolves_through_a_real_worker(celery_worker):
    team = TeamFactory()
    alice = person(sms_at=0, voice_at=30)
    policy_for(team, (60, [alice]), auto_resolve_after=timedelta(seconds=1))
    incident = services.incident_trigger(team=team, title="Flapping check").incident
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tasks.sweep.delay()
        time.sleep(0.5)
        incident.refresh_from_db()
        if incident.status == Incident.Status.RESOLVED:
            break
    assert incident.status == Incident.Status.RESOLVED
    assert incident.resolved_at is not None and incident.resolved_at <= timezone.now()
    assert not Page.objects.filter(incident=incident, status=Page.Status.PENDING).exists()
    assert incident.timeline.filter(kind=Kind.RESOLVED).count() == 1


@pytest.mark.django_db
def test_a_suppressed_incident_is_auto_resolved_too():
    """Maintenance-window incidents page nobody, but they must not stay open for ever."""
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]), auto_resolve_after=timedelta(minutes=30))
    incident = trigger(team, suppressed=True)
    assert not Page.objects.filter(incident=incident).exists()
    assert incident.next_action_at == T0 + 30 * MIN
    assert advance.escalations_sweep(now=T0 + 30 * MIN) == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    assert not Page.objects.filter(incident=incident).exists()
    assert incident.timeline.filter(kind=Kind.RESOLVED).count() == 1


@pytest.mark.django_db
def test_an_incident_of_a_policy_without_steps_is_auto_resolved():
    team = TeamFactory()
    policy_for(team, auto_resolve_after=timedelta(minutes=30))
    incident = trigger(team)
    assert incident.next_action_at == T0 + 30 * MIN
    assert advance.escalations_sweep(now=T0 + 30 * MIN) == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
