"""Member writes for the portal's member page: audit, and the guard rails (last manager, roster dependents)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from rotations.models import AuditEntry, Membership
from rotations.services import memberships
from tests.factories import (
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    MembershipFactory,
    OverrideFactory,
    RotationEraFactory,
    RotationFactory,
    StaffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def actor():
    return StaffFactory()


def _audits(team, action):
    return list(AuditEntry.objects.filter(team=team, object_type="rotations.membership", action=action))


def test_create_adds_with_the_role_and_audits(team, actor):
    user = UserFactory(full_name="Ana Kim")
    membership = memberships.membership_create(team=team, user=user, role="viewer", actor=actor)
    assert (membership.team, membership.user, membership.role) == (team, user, "viewer")
    [entry] = _audits(team, "create")
    assert entry.actor == actor and entry.changes == {"user": [None, user.pk], "role": [None, "viewer"]}


def test_create_refuses_an_existing_member_and_unknown_roles(team, actor):
    existing = MembershipFactory(team=team, role="engineer").user
    with pytest.raises(ValidationError, match="already in .* as engineer"):
        memberships.membership_create(team=team, user=existing, role="manager", actor=actor)
    with pytest.raises(ValidationError, match="Choose one of"):
        memberships.membership_create(team=team, user=UserFactory(), role="owner", actor=actor)
    with pytest.raises(ValidationError, match="deactivated"):
        memberships.membership_create(team=team, user=UserFactory(is_active=False), role="viewer", actor=actor)
    assert not _audits(team, "create")


def test_create_losing_a_race_to_the_same_add_is_a_validation_error(team, actor, monkeypatch):
    """Two staff add the same person at once: both pass the existence check, the unique constraint
    stops the second, and that one gets a clear error (not a 500) while the first row stands."""
    user = UserFactory()
    winner = Membership.objects.create(team=team, user=user, role="engineer")
    real_filter = Membership.objects.filter

    def filter_as_before_the_winner_committed(*args, **kwargs):
        return real_filter(*args, **kwargs).exclude(pk=winner.pk)

    monkeypatch.setattr(Membership.objects, "filter", filter_as_before_the_winner_committed)
    with pytest.raises(ValidationError, match="just added"):
        memberships.membership_create(team=team, user=user, role="manager", actor=actor)
    monkeypatch.undo()
    assert list(Membership.objects.filter(team=team, user=user).values_list("role", flat=True)) == ["engineer"]
    assert not _audits(team, "create")


def test_update_changes_role_and_audits_once(team, actor):
    MembershipFactory(team=team, role="manager")
    membership = MembershipFactory(team=team, role="engineer")
    memberships.membership_update(membership=membership, role="manager", actor=actor, now=NOW)
    memberships.membership_update(membership=membership, role="manager", actor=actor, now=NOW)  # no change: no entry
    membership.refresh_from_db()
    assert membership.role == "manager"
    [entry] = _audits(team, "update")
    assert entry.changes == {"role": ["engineer", "manager"]}


def test_last_manager_cannot_be_demoted_or_removed_while_others_remain(team, actor):
    boss = MembershipFactory(team=team, role="manager", user=UserFactory(full_name="Maria Lopez"))
    MembershipFactory(team=team, role="engineer")
    with pytest.raises(ValidationError, match="Maria Lopez is the last manager of .*make someone else a manager"):
        memberships.membership_update(membership=boss, role="engineer", actor=actor, now=NOW)
    with pytest.raises(ValidationError, match="last manager"):
        memberships.membership_delete(membership=boss, actor=actor, now=NOW)
    boss.refresh_from_db()
    assert boss.role == "manager"
    # With a second manager, either may go.
    MembershipFactory(team=team, role="manager")
    memberships.membership_update(membership=boss, role="engineer", actor=actor, now=NOW)
    boss.refresh_from_db()
    assert boss.role == "engineer"


def test_the_only_member_may_leave(team, actor):
    only = MembershipFactory(team=team, role="manager")
    memberships.membership_delete(membership=only, actor=actor, now=NOW)
    assert not Membership.objects.filter(team=team).exists()
    [entry] = _audits(team, "delete")
    assert entry.changes == {"user": [only.user_id, None], "role": ["manager", None]}


def test_removing_a_rotation_participant_is_refused_naming_the_rotation(team, actor):
    MembershipFactory(team=team, role="manager")
    member = MembershipFactory(team=team, role="engineer", user=UserFactory(full_name="Jonas Berg"))
    rotation = RotationFactory(team=team, name="Weekly")
    RotationEraFactory(rotation=rotation, effective_from=NOW - timedelta(days=30), participants=[member.user])
    with pytest.raises(ValidationError) as err:
        memberships.membership_delete(membership=member, actor=actor, now=NOW)
    assert "Cannot remove Jonas Berg" in str(err.value) and "rotation Weekly" in str(err.value)
    with pytest.raises(ValidationError, match="rotation Weekly"):
        memberships.membership_update(membership=member, role="viewer", actor=actor, now=NOW)
    assert Membership.objects.filter(pk=member.pk, role="engineer").exists()
    assert not _audits(team, "delete")


def test_only_current_and_future_definitions_count(team, actor):
    MembershipFactory(team=team, role="manager")
    member = MembershipFactory(team=team, role="engineer")
    others = [UserFactory()]
    past = RotationFactory(team=team, name="Old")
    RotationEraFactory(rotation=past, effective_from=NOW - timedelta(days=60), participants=[member.user])
    RotationEraFactory(rotation=past, effective_from=NOW - timedelta(days=1), participants=others)
    assert memberships.membership_dependents(team=team, user=member.user, now=NOW) == []
    future = RotationFactory(team=team, name="Next quarter")
    RotationEraFactory(rotation=future, effective_from=NOW + timedelta(days=20), participants=[member.user])
    assert memberships.membership_dependents(team=team, user=member.user, now=NOW) == ["rotation Next quarter"]


def test_overrides_and_policy_steps_are_dependents_too(team, actor):
    member = MembershipFactory(team=team, role="engineer")
    rotation = RotationFactory(team=team, name="Weekly")
    OverrideFactory(rotation=rotation, user=member.user, start=NOW - timedelta(days=9), end=NOW - timedelta(days=8))
    assert memberships.membership_dependents(team=team, user=member.user, now=NOW) == []  # ended: history only
    OverrideFactory(rotation=rotation, user=member.user, start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=3))
    policy = EscalationPolicyFactory(team=team, name="Default")
    EscalationStepFactory(policy=policy, order=0)
    step = EscalationStepFactory(policy=policy, order=1)
    EscalationTargetFactory(step=step, kind="user", position="", user=member.user)
    assert memberships.membership_dependents(team=team, user=member.user, now=NOW) == [
        "an override in rotation Weekly that has not ended",
        "escalation policy Default, step 2",
    ]


def test_engineer_to_viewer_is_fine_without_dependents(team, actor):
    MembershipFactory(team=team, role="manager")
    member = MembershipFactory(team=team, role="engineer")
    memberships.membership_update(membership=member, role="viewer", actor=actor, now=NOW)
    memberships.membership_delete(membership=member, actor=actor, now=NOW)
    assert [e.changes for e in _audits(team, "update")] == [{"role": ["engineer", "viewer"]}]
    assert len(_audits(team, "delete")) == 1
