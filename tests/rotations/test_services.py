"""Roster services against the database: conflicts, eras, audit."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError

from rotations import selectors
from rotations.models import AuditEntry, Override, RotationEra
from rotations.schedule import Reason
from rotations.services import exclusions, memberships, overrides
from rotations.services import rotations as services_rotations
from rotations.services import teams as services_teams
from tests.factories import ExclusionFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

MON = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin


@pytest.fixture
def people(team):
    """Engineers of `team`: a rotation's participants page for its team."""
    return [
        MembershipFactory(team=team, user=UserFactory(full_name=n), role="engineer").user
        for n in ("Maria Lopez", "Jonas Berg", "Ana Kim", "Tom Wu")
    ]


@pytest.fixture
def rotation(team, people, staff):
    return services_rotations.rotation_create(
        team=team,
        name="Payments",
        time_zone="Europe/Berlin",
        positions=["primary", "secondary"],
        start_date=date(2026, 3, 2),
        handoff_time=time(9, 0),
        shift_unit="weeks",
        shift_length=1,
        participants=people,
        restrictions=[],
        actor=staff,
    )


def _oncall(team, at):
    return {p: [s.user_id for s in shifts] for p, shifts in selectors.team_oncall_get(team=team, at=at).items()}


def test_rotation_create_resolves_and_audits(team, rotation, people, staff):
    assert _oncall(team, MON + timedelta(hours=1)) == {"primary": [people[0].pk], "secondary": [people[1].pk]}
    assert _oncall(team, MON + timedelta(days=7, hours=1)) == {"primary": [people[1].pk], "secondary": [people[2].pk]}
    entry = AuditEntry.objects.get(object_type="rotations.rotation", object_id=str(rotation.pk))
    assert entry.actor == staff and entry.team == team and entry.action == "create"
    assert entry.changes["name"] == [None, "Payments"]
    assert entry.changes["era.participants"] == [None, [p.pk for p in people]]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"positions": []}, "positions"),
        ({"positions": ["a", "a"]}, "positions"),
        ({"positions": ["a", "b", "c", "d", "e", "f"]}, "positions"),
        ({"restrictions": [{"weekday": 9, "start": "08:00", "end": "10:00"}]}, "restrictions"),
        ({"restrictions": [{"start": "08:00", "end": "08:00"}]}, "restrictions"),
        ({"restrictions": [{"start": "8 o'clock", "end": "10:00"}]}, "restrictions"),
        ({"shift_unit": "fortnights"}, "shift_unit"),
        ({"shift_length": 0}, "shift_length"),
    ],
)
def test_rotation_create_validates(team, people, staff, kwargs, field):
    base = dict(
        team=team,
        name="R",
        time_zone="UTC",
        positions=["primary"],
        start_date=date(2026, 3, 2),
        handoff_time=time(9),
        shift_unit="days",
        shift_length=1,
        participants=people,
        restrictions=[],
        actor=staff,
    )
    base.update(kwargs)
    with pytest.raises(ValidationError) as err:
        services_rotations.rotation_create(**base)
    assert field in err.value.message_dict


def test_override_conflict_same_position_message(team, rotation, people, staff):
    maria, jonas, ana, _ = people
    first = overrides.override_create(
        rotation=rotation,
        user=maria,
        start=MON + timedelta(hours=1),
        end=MON + timedelta(hours=3),
        position="primary",
        reason="swap",
        actor=staff,
    )
    with pytest.raises(ValidationError) as err:
        overrides.override_create(
            rotation=rotation,
            user=ana,
            start=MON + timedelta(hours=2),
            end=MON + timedelta(hours=5),
            position="primary",
            reason="",
            actor=staff,
        )
    # Overlap 11:00-12:00 Berlin.
    assert err.value.message_dict == {
        "position": [f"Maria Lopez already holds primary for Payments 2026-03-02 11:00–12:00 via override #{first.pk}."]
    }
    # Adjacent is fine; a different position is fine.
    overrides.override_create(
        rotation=rotation,
        user=ana,
        start=MON + timedelta(hours=3),
        end=MON + timedelta(hours=4),
        position="primary",
        actor=staff,
    )
    overrides.override_create(
        rotation=rotation,
        user=jonas,
        start=MON + timedelta(hours=1),
        end=MON + timedelta(hours=2),
        position="secondary",
        actor=staff,
    )
    assert Override.objects.count() == 3


def test_override_conflict_same_replaced_person_and_taker(team, rotation, people, staff):
    maria, jonas, ana, tom = people
    first = overrides.override_create(
        rotation=rotation, user=ana, start=MON, end=MON + timedelta(days=1), replaces_user=maria, actor=staff
    )
    with pytest.raises(ValidationError) as err:
        overrides.override_create(
            rotation=rotation,
            user=tom,
            start=MON + timedelta(hours=5),
            end=MON + timedelta(days=2),
            replaces_user=maria,
            actor=staff,
        )
    assert "already takes Maria Lopez's shifts in Payments" in err.value.message_dict["replaces_user"][0]
    assert f"override #{first.pk}" in err.value.message_dict["replaces_user"][0]
    with pytest.raises(ValidationError) as err:
        overrides.override_create(
            rotation=rotation,
            user=ana,
            start=MON + timedelta(hours=5),
            end=MON + timedelta(hours=6),
            position="secondary",
            actor=staff,
        )
    assert err.value.message_dict["user"] == [
        f"Ana Kim already takes Maria Lopez's shifts in Payments 2026-03-02 14:00–15:00 via override #{first.pk}."
    ]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({}, "position"),
        ({"position": "tertiary"}, "position"),
        ({"position": "primary", "replaces": True}, "replaces_user"),
        ({"position": "primary", "end_before": True}, "end"),
    ],
)
def test_override_validation(rotation, people, staff, kwargs, field):
    start, end = MON, MON + timedelta(hours=1)
    if kwargs.pop("end_before", False):
        end = start - timedelta(hours=1)
    if kwargs.pop("replaces", False):
        kwargs["replaces_user"] = people[1]
    with pytest.raises(ValidationError) as err:
        overrides.override_create(rotation=rotation, user=people[0], start=start, end=end, actor=staff, **kwargs)
    assert field in err.value.message_dict


def test_era_change_keeps_past_and_changes_future(team, rotation, people, staff):
    maria, jonas, ana, tom = people
    newcomer = MembershipFactory(team=team, user=UserFactory(full_name="Nia New"), role="engineer").user
    since, until = MON, MON + timedelta(days=42)
    change_at = MON + timedelta(days=17, hours=3)  # mid-shift in week 3
    past_before = selectors.team_shifts_get(team=team, since=since, until=change_at)
    era = services_rotations.rotation_definition_change(
        rotation=rotation,
        effective_from=change_at,
        actor=staff,
        participants=[tom, newcomer],
        shift_length=2,
        now=change_at - timedelta(days=1),
    )
    after = selectors.team_shifts_get(team=team, since=since, until=until)
    assert selectors.team_shifts_get(team=team, since=since, until=change_at) == past_before
    assert len(past_before) == 6  # two weeks and a bit, two positions
    assert [s for s in after if s.end <= change_at] == [s for s in past_before if s.end <= change_at]
    future = [s for s in after if s.start >= change_at]
    assert future and {s.user_id for s in future} == {tom.pk, newcomer.pk}
    assert RotationEra.objects.filter(rotation=rotation).count() == 2
    entry = AuditEntry.objects.get(object_type="rotations.rotationera", object_id=str(era.pk))
    assert entry.changes["participants"] == [[p.pk for p in people], [tom.pk, newcomer.pk]]
    assert entry.changes["shift_length"] == [1, 2]
    assert "shift_unit" not in entry.changes


def test_era_change_refuses_past_for_non_staff(team, rotation, people):
    manager = MembershipFactory(team=team, role="manager").user
    now = MON + timedelta(days=3)
    with pytest.raises(ValidationError) as err:
        services_rotations.rotation_definition_change(
            rotation=rotation, effective_from=now - timedelta(hours=1), actor=manager, shift_length=2, now=now
        )
    assert "effective_from" in err.value.message_dict
    # Within tolerance is fine.
    services_rotations.rotation_definition_change(
        rotation=rotation, effective_from=now - timedelta(minutes=2), actor=manager, shift_length=2, now=now
    )


def test_exclusion_cover_and_audit(team, rotation, people, staff):
    maria, jonas, ana, tom = people
    x = exclusions.exclusion_create(
        user=maria, start=MON + timedelta(days=1), end=MON + timedelta(days=2), kind="sick", reason="flu", actor=maria
    )
    shifts = selectors.team_oncall_get(team=team, at=MON + timedelta(days=1, hours=1))["primary"]
    assert [(s.user_id, s.reason, s.scheduled_user_id, s.exclusion_id) for s in shifts] == [
        (ana.pk, Reason.COVER, maria.pk, x.pk)
    ]
    exclusions.exclusion_update(exclusion=x, end=MON + timedelta(days=3), actor=maria)
    exclusions.exclusion_delete(exclusion=x, actor=staff)
    entries = list(AuditEntry.objects.filter(object_type="rotations.exclusion").order_by("id"))
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert all(e.team == team for e in entries)
    assert entries[1].changes == {"end": [(MON + timedelta(days=2)).isoformat(), (MON + timedelta(days=3)).isoformat()]}
    assert entries[2].actor == staff


def test_oncall_until_accounts_for_later_exclusion(team, rotation, people, staff):
    maria = people[0]
    ExclusionFactory(user=maria, start=MON + timedelta(days=4), end=MON + timedelta(days=5))
    (shift,) = selectors.team_oncall_get(team=team, at=MON + timedelta(hours=1))["primary"]
    assert shift.user_id == maria.pk and shift.end == MON + timedelta(days=4)


def test_team_and_membership_services_audit(staff):
    team = services_teams.team_create(name="Payments Team", time_zone="Europe/Berlin", actor=staff)
    assert team.slug == "payments-team"
    services_teams.team_update(team=team, description="money", actor=staff)
    with pytest.raises(ValidationError):
        services_teams.team_update(team=team, time_zone="Nowhere/Land", actor=staff)
    user = UserFactory()
    membership = memberships.membership_create(team=team, user=user, role="viewer", actor=staff)
    memberships.membership_update(membership=membership, role="manager", actor=staff, now=MON)
    memberships.membership_delete(membership=membership, actor=staff, now=MON)
    changes = list(AuditEntry.objects.filter(team=team).order_by("id").values_list("action", "changes"))
    assert changes[1] == ("update", {"description": ["", "money"]})
    assert changes[3] == ("update", {"role": ["viewer", "manager"]})
    assert changes[4][0] == "delete"


def test_ical_token_rotate(staff):
    team = TeamFactory()
    old = team.ical_token
    new = services_teams.team_ical_token_rotate(team=team, actor=staff)
    team.refresh_from_db()
    assert team.ical_token == new != old
    user = UserFactory()
    old = user.ical_token
    assert services_teams.user_ical_token_rotate(user=user, actor=user) != old
    assert AuditEntry.objects.filter(object_type="portal.user", object_id=str(user.pk)).exists()
