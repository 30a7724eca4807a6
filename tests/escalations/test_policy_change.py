"""Moving an incident to another escalation policy: scenario tests with `now` passed in, the API
and the portal control."""

from datetime import timedelta

import pytest

from escalations.incidents import advance, services
from escalations.models import Incident, Page, TimelineEvent
from tests.escalations.api_helpers import api_client
from tests.escalations.test_services import MIN, person, policy_for, trigger
from tests.factories import T0, EscalationPolicyFactory, EscalationStepFactory, EscalationTargetFactory, TeamFactory

pytestmark = pytest.mark.django_db
Kind = TimelineEvent.Kind


def second_policy(team, *steps, **kwargs):
    """Another policy of the team, not its default."""
    default = team.escalation_policy
    policy = policy_for(team, *steps, **kwargs)
    team.escalation_policy = default
    team.save()
    return policy


def pages(incident):
    return sorted(
        (p.user.display_name, p.channel, p.cycle, p.step, p.status, p.due_at - T0)
        for p in Page.objects.filter(incident=incident).select_related("user")
    )


def test_move_restarts_at_step_one_of_the_new_policy_at_once():
    team = TeamFactory()
    alice, bob, carol, dave = person(voice_at=20), person(), person(), person()
    policy_for(team, (30, [alice]), (30, [bob]))
    other = second_policy(team, (10, [carol]), (10, [dave]))
    incident = trigger(team)
    mover = person()
    services.incident_policy_change(incident=incident, policy=other, by=mover, via="web", now=T0 + 5 * MIN)
    incident.refresh_from_db()
    assert incident.policy == other
    assert (incident.status, incident.step, incident.cycle) == ("triggered", 0, 1)
    assert incident.next_action_at == T0 + 15 * MIN
    assert list(incident.assignees.all()) == [carol]
    # The old step's pending pages (SMS not yet delivered in this test, voice due at +20) are canceled.
    assert pages(incident) == [
        (alice.display_name, "sms", 0, 0, "canceled", timedelta(0)),
        (alice.display_name, "voice", 0, 0, "canceled", 20 * MIN),
        (carol.display_name, "sms", 1, 0, "pending", 5 * MIN),
    ]
    moved = incident.timeline.get(kind=Kind.POLICY_CHANGED)
    assert moved.actor == mover and moved.at == T0 + 5 * MIN
    assert other.name in moved.message and mover.display_name in moved.message
    # The old policy's step 2 (bob, due at +30) never fires; the new one's step 2 fires at +15.
    advance.escalations_sweep(now=T0 + 15 * MIN)
    advance.escalations_sweep(now=T0 + 30 * MIN)
    advance.escalations_sweep(now=T0 + 31 * MIN)
    assert not Page.objects.filter(incident=incident, user=bob).exists()
    assert Page.objects.filter(incident=incident, user=dave, cycle=1, step=1, due_at=T0 + 15 * MIN).count() == 1


def test_a_stale_wake_up_for_the_old_step_does_nothing():
    team = TeamFactory()
    alice, bob, carol = person(), person(), person()
    policy_for(team, (10, [alice]), (10, [bob]))
    other = second_policy(team, (60, [carol]))
    incident = trigger(team)
    services.incident_policy_change(incident=incident, policy=other, by=None, via="api", now=T0 + 2 * MIN)
    # The wake-up scheduled for the old step 2 arrives at +10.
    assert advance.incident_advance(incident_id=incident.pk, now=T0 + 10 * MIN) is None
    assert not Page.objects.filter(incident=incident, user=bob).exists()
    assert Page.objects.filter(incident=incident, user=carol).count() == 1


def test_an_acknowledged_incident_moved_is_triggered_again():
    team = TeamFactory()
    alice, carol = person(), person()
    policy_for(team, (10, [alice]))
    other = second_policy(team, (10, [carol]))
    incident = trigger(team)
    services.incident_acknowledge(incident=incident, by=alice, via="web", now=T0 + 1 * MIN)
    services.incident_policy_change(incident=incident, policy=other, by=alice, via="web", now=T0 + 2 * MIN)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED and incident.acknowledged_by is None
    assert Page.objects.filter(incident=incident, user=carol, due_at=T0 + 2 * MIN).count() == 1


def test_another_teams_policy_is_refused_and_nothing_changes():
    team, elsewhere = TeamFactory(), TeamFactory()
    alice = person()
    mine = policy_for(team, (10, [alice]))
    theirs = EscalationPolicyFactory(team=elsewhere)
    incident = trigger(team)
    with pytest.raises(ValueError):
        services.incident_policy_change(incident=incident, policy=theirs, by=None, via="api", now=T0 + MIN)
    incident.refresh_from_db()
    assert incident.policy == mine and incident.cycle == 0
    assert not incident.timeline.filter(kind=Kind.POLICY_CHANGED).exists()


def test_a_resolved_incident_cannot_be_moved():
    team = TeamFactory()
    alice = person()
    policy_for(team, (10, [alice]))
    other = second_policy(team, (10, [alice]))
    incident = trigger(team)
    services.incident_resolve(incident=incident, by=alice, via="web", now=T0 + MIN)
    with pytest.raises(ValueError):
        services.incident_policy_change(incident=incident, policy=other, by=alice, via="web", now=T0 + 2 * MIN)


# --- API and portal ---------------------------------------------------------------------------------


@pytest.fixture
def moved_setup(team, role_users):
    engineer = role_users["engineer"]
    first = EscalationPolicyFactory(team=team, name="Default")
    EscalationTargetFactory(step=EscalationStepFactory(policy=first, order=0), kind="user", position="", user=engineer)
    second = EscalationPolicyFactory(team=team, name="Database on-call")
    EscalationTargetFactory(
        step=EscalationStepFactory(policy=second, order=0), kind="user", position="", user=role_users["manager"]
    )
    team.escalation_policy = first
    team.save()
    incident = services.incident_trigger(team=team, title="Replica lag").incident
    advance.incident_advance(incident_id=incident.pk)
    return incident, second


def test_api_moves_the_incident(moved_setup, role_users):
    incident, second = moved_setup
    response = api_client(role_users["engineer"]).post(
        f"/api/v1/incidents/{incident.pk}/policy/", {"policy": second.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    incident.refresh_from_db()
    assert incident.policy == second
    event = incident.timeline.get(kind=Kind.POLICY_CHANGED)
    assert event.actor == role_users["engineer"] and event.via == "api"


@pytest.mark.parametrize("policy_id", ["other-team", 999999, "abc", None])
def test_api_refuses_a_policy_outside_the_team(moved_setup, role_users, policy_id):
    incident, _ = moved_setup
    if policy_id == "other-team":
        policy_id = EscalationPolicyFactory(team=TeamFactory()).pk
    response = api_client(role_users["manager"]).post(
        f"/api/v1/incidents/{incident.pk}/policy/", {"policy": policy_id}, format="json"
    )
    assert response.status_code == 400
    assert "policy" in response.json() or "errors" in response.json()
    incident.refresh_from_db()
    assert incident.policy.name == "Default"


def test_portal_control_moves_the_incident(moved_setup, role_users, client):
    incident, second = moved_setup
    client.force_login(role_users["manager"])
    page = client.get(f"/incidents/{incident.pk}/")
    assert b"Database on-call" in page.content and b"Move and restart" in page.content
    response = client.post(f"/incidents/{incident.pk}/policy", {"policy": second.pk})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.policy == second
    assert incident.timeline.get(kind=Kind.POLICY_CHANGED).via == "web"


def test_portal_refuses_another_teams_policy(moved_setup, role_users, client):
    incident, _ = moved_setup
    theirs = EscalationPolicyFactory(team=TeamFactory(), name="Theirs")
    client.force_login(role_users["engineer"])
    response = client.post(f"/incidents/{incident.pk}/policy", {"policy": theirs.pk})
    assert response.status_code == 400
    assert b"this team&#x27;s escalation policies" in response.content or b"escalation policies" in response.content
    incident.refresh_from_db()
    assert incident.policy.name == "Default"
