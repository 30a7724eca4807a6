"""The engine driven by a real Celery worker over Redis (not eager mode)."""

import time
from datetime import timedelta

import pytest

from escalations.incidents import advance, publish, services, tasks
from escalations.models import Page
from tests.factories import (
    ContactMethodFactory,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    NotificationRuleFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(celery_worker):
    return celery_worker


def _team_with_policy():
    team = TeamFactory()
    user = UserFactory()
    sms = ContactMethodFactory(user=user, kind="sms")
    NotificationRuleFactory(user=user, contact_method=sms, delay=timedelta(0))
    policy = EscalationPolicyFactory(team=team)
    step = EscalationStepFactory(policy=policy, order=0, delay=timedelta(minutes=5))
    EscalationTargetFactory(step=step, kind="user", position="", user=user)
    team.escalation_policy = policy
    team.save()
    return team, user


def _wait_for(predicate, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_trigger_pages_through_the_worker_after_commit(worker):
    team, user = _team_with_policy()
    incident = services.incident_trigger(team=team, title="Checkout is down").incident
    assert _wait_for(lambda: Page.objects.filter(incident=incident).exists())
    assert Page.objects.filter(incident=incident, user=user).count() == 1


def test_the_same_advance_task_delivered_twice_pages_once(worker):
    team, _ = _team_with_policy()
    incident = services.incident_trigger(team=team, title="Queue backlog").incident
    for _ in range(5):
        tasks.incident_advance.delay(incident.pk)
    tasks.sweep.delay()
    assert _wait_for(lambda: Page.objects.filter(incident=incident).exists())
    time.sleep(1.0)
    assert Page.objects.filter(incident=incident).count() == 1


def test_a_lost_message_is_picked_up_by_the_sweep(worker, monkeypatch):
    team, _ = _team_with_policy()
    # Drop the immediate task on the floor, as if Redis lost it.
    with monkeypatch.context() as patch:
        patch.setattr(publish, "_on_commit_advance", lambda incident: None)
        incident = services.incident_trigger(team=team, title="Lost message").incident
    time.sleep(0.5)
    assert not Page.objects.filter(incident=incident).exists()
    tasks.sweep.delay()
    assert _wait_for(lambda: Page.objects.filter(incident=incident).count() == 1)


def test_the_sweep_times_a_wake_up_for_an_incident_due_before_its_next_tick(worker, monkeypatch):
    """An incident whose own message was lost and which is not yet due when the sweep runs is
    advanced by the sweep's timed wake-up, with no second sweep."""
    from django.core.cache import cache
    from django.utils import timezone

    from escalations.models import Incident

    team, _ = _team_with_policy()
    with monkeypatch.context() as patch:
        patch.setattr(publish, "_on_commit_advance", lambda incident: None)
        incident = services.incident_trigger(team=team, title="Due in a moment").incident
    due = timezone.now() + timedelta(seconds=1.5)
    Incident.objects.filter(pk=incident.pk).update(next_action_at=due)
    # Earlier tests' sweeps already published this window (their horizon); start afresh.
    cache.delete(advance._WAKE_HORIZON_KEY)
    tasks.sweep.delay()
    assert _wait_for(lambda: Page.objects.filter(incident=incident).count() == 1)
    assert Page.objects.get(incident=incident).created_at >= due
