"""Scenario tests: advance a clock (passed as `now`) and assert exactly which pages are written."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from escalations.incidents import advance, publish, services
from escalations.models import Incident, Page, TimelineEvent
from tests.factories import (
    T0,
    ContactMethodFactory,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    MembershipFactory,
    NotificationRuleFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MIN = timedelta(minutes=1)


def person(sms_at=0, voice_at=None):
    """A user with verified SMS (and optionally voice) rules at the given minute delays."""
    user = UserFactory()
    sms = ContactMethodFactory(user=user, kind="sms")
    NotificationRuleFactory(user=user, contact_method=sms, delay=sms_at * MIN, order=0)
    if voice_at is not None:
        voice = ContactMethodFactory(user=user, kind="voice", value=sms.value)
        NotificationRuleFactory(user=user, contact_method=voice, delay=voice_at * MIN, order=1)
    return user


def policy_for(team, *steps, repeat=0, **kwargs):
    """steps: (delay minutes, [users]) pairs; user targets keep these tests independent of rosters."""
    policy = EscalationPolicyFactory(team=team, repeat=repeat, **kwargs)
    for order, (delay, users) in enumerate(steps):
        step = EscalationStepFactory(policy=policy, order=order, delay=delay * MIN)
        for user in users:
            EscalationTargetFactory(step=step, kind="user", position="", user=user)
    team.escalation_policy = policy
    team.save()
    return policy


def sent(incident):
    return sorted(
        (p.user.display_name, p.channel, p.step, p.loop, p.due_at - T0)
        for p in Page.objects.filter(incident=incident).select_related("user")
    )


def trigger(team, now=T0, **kwargs):
    result = services.incident_trigger(team=team, title="Database down", now=now, **kwargs)
    advance.incident_advance(incident_id=result.incident.pk, now=now)
    result.incident.refresh_from_db()
    return result.incident


def test_timed_escalation_over_two_steps():
    team = TeamFactory()
    alice, bob = person(voice_at=2), person()
    policy_for(team, (5, [alice]), (5, [bob]))
    incident = trigger(team)
    assert sent(incident) == [
        (alice.display_name, "sms", 0, 0, timedelta(0)),
        (alice.display_name, "voice", 0, 0, 2 * MIN),
    ]
    assert advance.escalations_sweep(now=T0 + 4 * MIN) == 0
    assert advance.escalations_sweep(now=T0 + 5 * MIN) == 1
    assert (bob.display_name, "sms", 1, 0, 5 * MIN) in sent(incident)
    assert len(sent(incident)) == 3
    # Policy exhausted after the last step (repeat=0): nothing more, ever.
    assert advance.escalations_sweep(now=T0 + 60 * MIN) == 1
    assert advance.escalations_sweep(now=T0 + 600 * MIN) == 0
    assert len(sent(incident)) == 3
    assert incident.timeline.filter(kind=TimelineEvent.Kind.EXHAUSTED).exists()


def test_repeat_loops_page_again_then_stop():
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]), repeat=2)
    incident = trigger(team)
    for minute in range(5, 40):
        advance.escalations_sweep(now=T0 + minute * MIN)
    assert [(step, loop) for _, _, step, loop, _ in sent(incident)] == [(0, 0), (0, 1), (0, 2)]


def test_acknowledge_stops_paging_and_cancels_pending_pages():
    team = TeamFactory()
    alice, bob = person(voice_at=2), person()
    policy_for(team, (5, [alice]), (5, [bob]))
    incident = trigger(team)
    assert services.incident_acknowledge(incident=incident, by=alice, via="sms", now=T0 + MIN)
    assert not services.incident_acknowledge(incident=incident, by=alice, via="sms", now=T0 + MIN)
    voice = Page.objects.get(incident=incident, channel="voice")
    assert voice.status == Page.Status.CANCELED
    for minute in range(2, 120):
        advance.escalations_sweep(now=T0 + minute * MIN)
    assert Page.objects.filter(incident=incident).count() == 2
    assert incident.timeline.filter(kind="acknowledged", actor=alice, via="sms").exists()


def test_ack_timeout_retriggers_from_the_first_step():
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]), ack_timeout=timedelta(minutes=30))
    incident = trigger(team)
    services.incident_acknowledge(incident=incident, by=alice, via="web", now=T0 + MIN)
    advance.escalations_sweep(now=T0 + 30 * MIN)
    assert advance.escalations_sweep(now=T0 + 31 * MIN) == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED
    assert incident.cycle == 1
    assert Page.objects.filter(incident=incident, cycle=1, step=0).count() == 1
    assert incident.timeline.filter(kind="retriggered").exists()


def test_manual_escalation_of_an_acknowledged_incident_pages_the_next_step():
    team = TeamFactory()
    alice, bob = person(), person()
    policy_for(team, (5, [alice]), (5, [bob]))
    incident = trigger(team)
    services.incident_acknowledge(incident=incident, by=alice, via="web", now=T0 + MIN)
    assert services.incident_escalate(incident=incident, by=alice, via="web", now=T0 + 2 * MIN)
    assert Page.objects.filter(incident=incident, user=bob, step=1).count() == 1
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED
    assert list(incident.assignees.all()) == [bob]


def test_step_with_nobody_is_skipped_when_the_policy_says_so():
    team = TeamFactory()
    bob = person()
    policy = policy_for(team, (5, []), (5, [bob]), skip_empty_steps=True)
    assert policy.skip_empty_steps
    incident = trigger(team)
    assert [p[0] for p in sent(incident)] == [bob.display_name]
    assert incident.timeline.filter(kind="step_skipped").exists()


def test_step_with_nobody_waits_out_its_delay_by_default():
    team = TeamFactory()
    bob = person()
    policy_for(team, (5, []), (5, [bob]))
    incident = trigger(team)
    assert sent(incident) == []
    advance.escalations_sweep(now=T0 + 5 * MIN)
    assert [p[0] for p in sent(incident)] == [bob.display_name]


def test_several_people_on_one_step_are_each_paged():
    team = TeamFactory()
    alice, bob, carol = person(), person(), person()
    policy_for(team, (5, [alice, bob, carol]))
    incident = trigger(team)
    assert {p[0] for p in sent(incident)} == {alice.display_name, bob.display_name, carol.display_name}
    assert incident.assignees.count() == 3


def test_team_and_manager_targets():
    team = TeamFactory()
    manager = MembershipFactory(team=team, role="manager").user
    engineer = MembershipFactory(team=team, role="engineer").user
    MembershipFactory(team=team, role="viewer")
    for user in (manager, engineer):
        ContactMethodFactory(user=user, kind="email", value=user.email)
    policy = EscalationPolicyFactory(team=team)
    step = EscalationStepFactory(policy=policy, order=0)
    EscalationTargetFactory(step=step, kind="managers", position="")
    step2 = EscalationStepFactory(policy=policy, order=1)
    EscalationTargetFactory(step=step2, kind="team", position="")
    team.escalation_policy = policy
    team.save()
    incident = trigger(team)
    assert {p.user for p in Page.objects.filter(incident=incident)} == {manager}
    advance.escalations_sweep(now=T0 + 5 * MIN)
    assert {p.user for p in Page.objects.filter(incident=incident, step=1)} == {manager, engineer}


def test_rules_added_mid_incident_apply_to_later_steps_only():
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]), repeat=1)
    incident = trigger(team)
    voice = ContactMethodFactory(user=alice, kind="voice")
    NotificationRuleFactory(user=alice, contact_method=voice, delay=MIN, order=5)
    advance.escalations_sweep(now=T0 + 5 * MIN)
    assert sorted((p.loop, p.channel) for p in Page.objects.filter(incident=incident)) == [
        (0, "sms"),
        (1, "sms"),
        (1, "voice"),
    ]


def test_outage_spanning_several_rule_delays_yields_one_page_per_rule_not_a_burst():
    team = TeamFactory()
    alice, bob = person(sms_at=0, voice_at=2), person()
    policy_for(team, (5, [alice]), (5, [bob]), repeat=3)
    incident = trigger(team)
    # The sweep was down for 45 minutes: 9 step delays went by.
    assert advance.escalations_sweep(now=T0 + 45 * MIN) == 1
    pages = Page.objects.filter(incident=incident)
    # Alice's two rule pages exist once each; only ONE further step was performed.
    assert pages.filter(user=alice).count() == 2
    assert pages.filter(user=bob).count() == 1
    assert advance.escalations_sweep(now=T0 + 46 * MIN) == 0
    incident.refresh_from_db()
    assert incident.next_action_at == T0 + 50 * MIN


def test_unverified_contact_methods_are_never_paged():
    team = TeamFactory()
    alice = UserFactory()
    method = ContactMethodFactory(user=alice, verified_at=None)
    NotificationRuleFactory(user=alice, contact_method=method)
    policy_for(team, (5, [alice]))
    incident = trigger(team)
    assert sent(incident) == []
    assert incident.timeline.filter(kind="page_failed").exists()


def test_person_without_rules_is_paged_on_every_verified_method():
    team = TeamFactory()
    alice = UserFactory()
    ContactMethodFactory(user=alice, kind="sms")
    ContactMethodFactory(user=alice, kind="email", value=alice.email)
    policy_for(team, (5, [alice]))
    incident = trigger(team)
    assert sorted(p[1] for p in sent(incident)) == ["email", "sms"]


def test_dedup_key_joins_the_open_incident_and_opens_a_new_one_after_resolve():
    team = TeamFactory()
    policy_for(team, (5, [person()]))
    first = services.incident_trigger(team=team, title="disk full", dedup_key="disk", now=T0)
    again = services.incident_trigger(team=team, title="disk full", dedup_key="disk", now=T0 + MIN)
    assert first.created and not again.created
    assert again.incident.pk == first.incident.pk
    assert again.incident.alert_count == 2
    assert again.incident.updated_at == T0 + MIN and again.incident.title == "disk full"  # reloaded
    services.incident_resolve(incident=first.incident, by=None, via="api", now=T0 + 2 * MIN)
    third = services.incident_trigger(team=team, title="disk full", dedup_key="disk", now=T0 + 3 * MIN)
    assert third.created and third.incident.pk != first.incident.pk


def test_repeated_alert_timeline_row_copies_the_payload_unless_told_otherwise():
    team = TeamFactory()
    for key, extra in (("a", {}), ("b", {"alert_data": {"integration": 7}})):
        services.incident_trigger(team=team, title="t", dedup_key=key, payload={"n": 1}, now=T0, **extra)
        again = services.incident_trigger(team=team, title="t", dedup_key=key, payload={"n": 2}, now=T0, **extra)
        row = again.incident.timeline.get(kind="alert")
        assert row.data == ({"payload": {"n": 2}} if key == "a" else {"integration": 7})


def test_suppressed_incident_pages_nobody():
    team = TeamFactory()
    policy_for(team, (5, [person()]))
    incident = trigger(team, suppressed=True)
    advance.escalations_sweep(now=T0 + 60 * MIN)
    assert sent(incident) == []
    assert "maintenance" in incident.timeline.get(kind="created").message


def test_policy_edits_do_not_disturb_escalations_in_flight():
    team = TeamFactory()
    alice, bob, mallory = person(), person(), person()
    policy = policy_for(team, (5, [alice]), (5, [bob]))
    incident = trigger(team)
    step = policy.steps.get(order=1)
    step.targets.update(user=mallory)
    advance.escalations_sweep(now=T0 + 5 * MIN)
    assert Page.objects.filter(incident=incident, step=1).get().user == bob


def test_reassign_pages_the_new_assignee_once():
    team = TeamFactory()
    alice, carol = person(), person()
    MembershipFactory(team=team, user=carol)
    policy_for(team, (5, [alice]))
    incident = trigger(team)
    services.incident_reassign(incident=incident, by=alice, to_users=[carol], via="web", now=T0 + MIN)
    assert Page.objects.filter(incident=incident, user=carol).count() == 1
    assert list(incident.assignees.all()) == [carol]


@pytest.mark.parametrize("who", ["viewer", "other_team_engineer", "inactive_engineer"])
def test_reassign_refuses_anyone_but_active_engineers_and_managers_of_the_team(who):
    team = TeamFactory()
    alice, target = person(), person()
    policy_for(team, (5, [alice]))
    incident = trigger(team)
    if who == "viewer":
        MembershipFactory(team=team, user=target, role="viewer")
    elif who == "other_team_engineer":
        MembershipFactory(team=TeamFactory(), user=target)
    else:
        MembershipFactory(team=team, user=target)
        target.is_active = False
        target.save(update_fields=["is_active"])
    before = list(incident.assignees.all())
    with pytest.raises(ValidationError) as exc:
        services.incident_reassign(incident=incident, by=alice, to_users=[target], via="web", now=T0 + MIN)
    assert "user_ids" in exc.value.message_dict
    assert list(incident.assignees.all()) == before
    assert not Page.objects.filter(incident=incident, user=target).exists()
    assert not incident.timeline.filter(kind="reassigned").exists()


def test_snooze_quiets_then_retriggers():
    team = TeamFactory()
    alice = person()
    policy_for(team, (5, [alice]))
    incident = trigger(team)
    services.incident_snooze(incident=incident, by=alice, until=T0 + 60 * MIN, via="web", now=T0 + MIN)
    assert advance.escalations_sweep(now=T0 + 30 * MIN) == 0
    advance.escalations_sweep(now=T0 + 60 * MIN)
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert Page.objects.filter(incident=incident, cycle=1).count() == 1


def test_notes_land_on_the_timeline():
    team = TeamFactory()
    incident = trigger(team)
    services.incident_note_add(incident=incident, by=None, text="Looking at the replica lag", via="web")
    assert incident.timeline.filter(kind="note", message__contains="replica").exists()
    with pytest.raises(ValueError):
        services.incident_note_add(incident=incident, by=None, text="  ", via="web")


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_write_each_page_once():
    team = TeamFactory()
    people = [person(voice_at=1) for _ in range(3)]
    policy_for(team, (5, people[:1]), (5, people[1:]), repeat=2)
    incidents = [services.incident_trigger(team=team, title=f"outage {i}", now=T0).incident for i in range(30)]
    errors = []

    def run(minute):
        try:
            advance.escalations_sweep(now=T0 + minute * MIN, batch=7)
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
        finally:
            connection.close()

    for minute in (0, 5, 10):
        threads = [threading.Thread(target=run, args=(minute,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    for incident in incidents:
        keys = list(Page.objects.filter(incident=incident).values_list("cycle", "step", "loop", "user", "rule_index"))
        assert len(keys) == len(set(keys)) == 2 + 4 + 2  # step0 (sms+voice), step1 (2 people × 2), step0 loop1


def test_a_wake_up_message_advances_only_its_due_incidents_together():
    team = TeamFactory()
    alice, bob = person(), person()
    policy_for(team, (5, [alice]), (5, [bob]))
    first, second, later = trigger(team), trigger(team, dedup_key="b"), trigger(team, dedup_key="c")
    Incident.objects.filter(pk=later.pk).update(next_action_at=T0 + 9 * MIN)
    assert advance.incidents_advance(incident_ids=[first.pk, second.pk, later.pk], now=T0 + 5 * MIN) == 2
    for incident in (first, second):
        assert (bob.display_name, "sms", 1, 0, 5 * MIN) in sent(incident)
    assert all(p[2] == 0 for p in sent(later))
    # The same message again (redelivered) finds nothing due and writes nothing.
    assert advance.incidents_advance(incident_ids=[first.pk, second.pk, later.pk], now=T0 + 5 * MIN) == 0
    assert len(sent(first)) == 2


def test_incidents_due_soon_are_those_due_within_the_window_and_open():
    team = TeamFactory()
    policy_for(team, (5, [person()]))
    soon, resolved, far = trigger(team), trigger(team, dedup_key="r"), trigger(team, dedup_key="f")
    Incident.objects.filter(pk=far.pk).update(next_action_at=T0 + 9 * MIN)
    services.incident_resolve(incident=resolved, by=None, via="api", now=T0 + MIN)
    found = advance.incidents_due_soon_get(now=T0 + 4 * MIN, within=2 * MIN)
    assert found == [(soon.pk, T0 + 5 * MIN)]
    assert advance.incidents_due_soon_get(now=T0 + 5 * MIN, within=2 * MIN) == []  # already due: the sweep's


def test_each_sweep_publishes_wake_ups_only_past_the_previous_horizon(monkeypatch):
    from django.core.cache import cache
    from django.utils import timezone

    team = TeamFactory()
    policy_for(team, (5, [person()]))
    near, far = trigger(team), trigger(team, dedup_key="far")
    now = timezone.now()
    Incident.objects.filter(pk=near.pk).update(next_action_at=now + timedelta(seconds=1))
    Incident.objects.filter(pk=far.pk).update(next_action_at=now + timedelta(seconds=4))
    published = []
    monkeypatch.setattr(publish, "incidents_wake", lambda *, wakeups, now: published.append(sorted(wakeups)) or 1)
    cache.delete(advance._WAKE_HORIZON_KEY)
    advance.escalations_sweep_with_lookahead(lookahead=timedelta(seconds=3))
    assert [[pk for pk, _ in batch] for batch in published] == [[near.pk]]
    advance.escalations_sweep_with_lookahead(lookahead=timedelta(seconds=6))
    # The second sweep starts where the first one's window ended: `near` is not published again.
    assert [[pk for pk, _ in batch] for batch in published] == [[near.pk], [far.pk]]
    cache.delete(advance._WAKE_HORIZON_KEY)
