from datetime import UTC, date, datetime, time
from types import SimpleNamespace

import pytest
from django.core import mail
from rest_framework.test import APIClient

from rotations.models import Exclusion, Membership, Override, RotationEra
from rotations.services import rotations as services_rotations
from tests.factories import MembershipFactory, RotationEraFactory, RotationFactory, TeamFactory, UserFactory

MON = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin, first handoff


@pytest.fixture
def roster(team, role_users):
    """A "Payments" rotation on `team`: Maria, Jonas, Ana, Tom weekly from MON; plus the role users."""
    names = ("Maria Lopez", "Jonas Berg", "Ana Kim", "Tom Wu")
    people = [MembershipFactory(team=team, user=UserFactory(full_name=n), role="engineer").user for n in names]
    rotation = services_rotations.rotation_create(
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
        actor=role_users["staff"],
    )
    return rotation, people


@pytest.fixture
def api():
    def client_for(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


# A week of a primary/secondary rotation across the 2026-10-25 DST change (Europe/Berlin).
#
# Daily 09:00 local handoff, participants A B C D, shifts from Wed 2026-10-21:
#   21 A,B  22 B,C  23 C,D  24 D,A  25 A,B (CET from here)  26 B,C  27 C,D  28 D,A
# Override: B keeps primary on the 23rd until 21:00 local (cancels the 09:00 primary handoff B→C).
# Exclusion: C away all of the 26th (local) — D covers C's secondary until midnight.
def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def week(db):
    team = TeamFactory(name="Ops", slug="ops", time_zone="Europe/Berlin")
    users = {}
    for letter, name in zip("ABCD", ["Ann", "Ben", "Cat", "Dan"], strict=True):
        users[letter] = UserFactory(full_name=name, email=f"{name.lower()}@example.com")
        MembershipFactory(team=team, user=users[letter], role=Membership.Role.ENGINEER)
    manager = UserFactory(full_name="Meg", email="meg@example.com")
    MembershipFactory(team=team, user=manager, role=Membership.Role.MANAGER)
    rotation = RotationFactory(team=team, name="Main", time_zone="Europe/Berlin", positions=["primary", "secondary"])
    RotationEraFactory(
        rotation=rotation,
        effective_from=utc(2026, 10, 1),
        start_date=date(2026, 10, 21),
        handoff_time=time(9, 0),
        shift_unit=RotationEra.Unit.DAYS,
        shift_length=1,
        participants=[users[x] for x in "ABCD"],
    )
    override = Override.objects.create(
        rotation=rotation, user=users["B"], position="primary", start=utc(2026, 10, 23, 7), end=utc(2026, 10, 23, 19)
    )
    exclusion = Exclusion.objects.create(user=users["C"], start=utc(2026, 10, 25, 23), end=utc(2026, 10, 26, 23))
    mail.outbox.clear()
    return SimpleNamespace(
        team=team, rotation=rotation, override=override, exclusion=exclusion, manager=manager, **users
    )


@pytest.fixture
def names(week):
    return {week.A.email: "A", week.B.email: "B", week.C.email: "C", week.D.email: "D", week.manager.email: "M"}


# The fake Twilio API (real SDK pointed at it) for shift notices sent by SMS.
from tests.escalations.conftest import fake_twilio  # noqa: E402, F401
