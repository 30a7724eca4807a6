"""A realistic demo roster: teams, primary/secondary rotations, escalation policies, people.

Idempotent: running it again changes nothing. Other parts of Backstop add their demo data
(phone line, integrations) through `DEMO_EXTENSIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction

from escalations.models import EscalationPolicy, EscalationStep, EscalationTarget
from portal.models import ContactMethod, NotificationRule, User
from rotations.models import Membership, Rotation, RotationEra, RotationParticipant, Team

DEMO_PASSWORD = "backstop-demo"

# (email, full name, time zone)
PEOPLE = [
    ("staff@example.com", "Sam Staff", "Europe/London"),
    ("maria@example.com", "Maria Keller", "Europe/Berlin"),
    ("jonas@example.com", "Jonas Weber", "Europe/Berlin"),
    ("aisha@example.com", "Aisha Khan", "Europe/London"),
    ("tom@example.com", "Tom Novak", "Europe/Prague"),
    ("lena@example.com", "Lena Fischer", "Europe/Berlin"),
    ("carlos@example.com", "Carlos Ruiz", "America/Chicago"),
    ("emily@example.com", "Emily Chen", "America/Chicago"),
    ("noah@example.com", "Noah Brown", "America/New_York"),
    ("olivia@example.com", "Olivia Smith", "Australia/Sydney"),
    ("viewer@example.com", "Vic Viewer", "UTC"),
]

# team name, time zone, manager, engineers (rotation order)
TEAMS = [
    ("Payments", "Europe/Berlin", "maria@example.com",
     ["jonas@example.com", "aisha@example.com", "tom@example.com", "lena@example.com"]),
    ("Platform", "America/Chicago", "carlos@example.com",
     ["emily@example.com", "noah@example.com", "olivia@example.com", "tom@example.com"]),
    ("Customer Support", "Europe/London", "aisha@example.com",
     ["lena@example.com", "jonas@example.com", "noah@example.com"]),
]


@dataclass
class DemoSummary:
    created: bool
    users: list[tuple[str, str, str]]  # email, password, role description


DEMO_EXTENSIONS: list[Callable[[dict[str, Team], dict[str, User]], None]] = []


def _phone_for(index: int) -> str:
    return f"+1555010{index:04d}"


@transaction.atomic
def demo_seed(*, today: date | None = None) -> DemoSummary:
    today = today or datetime.now(UTC).date()
    created = not User.objects.filter(email="staff@example.com").exists()
    users: dict[str, User] = {}
    for index, (email, name, tz) in enumerate(PEOPLE):
        user, was_created = User.objects.get_or_create(
            email=email, defaults={"full_name": name, "time_zone": tz, "is_staff": email.startswith("staff")}
        )
        if was_created:
            user.set_password(DEMO_PASSWORD)
            user.is_superuser = user.is_staff
            user.save()
            verified = datetime.now(UTC)
            sms = ContactMethod.objects.create(user=user, kind="sms", value=_phone_for(index), verified_at=verified)
            voice = ContactMethod.objects.create(
                user=user, kind="voice", value=_phone_for(index), verified_at=verified
            )
            mail = ContactMethod.objects.create(user=user, kind="email", value=email, verified_at=verified)
            NotificationRule.objects.create(user=user, contact_method=sms, delay=timedelta(0), order=0)
            NotificationRule.objects.create(user=user, contact_method=mail, delay=timedelta(0), order=1)
            NotificationRule.objects.create(user=user, contact_method=voice, delay=timedelta(minutes=2), order=2)
        users[email] = user

    teams: dict[str, Team] = {}
    for name, tz, manager, engineers in TEAMS:
        slug = name.lower().replace(" ", "-")
        team, was_created = Team.objects.get_or_create(slug=slug, defaults={"name": name, "time_zone": tz})
        teams[name] = team
        if not was_created:
            continue
        Membership.objects.create(team=team, user=users[manager], role=Membership.Role.MANAGER)
        for email in engineers:
            Membership.objects.get_or_create(team=team, user=users[email], defaults={"role": "engineer"})
        Membership.objects.get_or_create(team=team, user=users["viewer@example.com"], defaults={"role": "viewer"})
        rotation = Rotation.objects.create(team=team, name="Weekly", time_zone=tz, positions=["primary", "secondary"])
        start = today - timedelta(days=today.weekday() + 7)  # Monday a week ago: history to look at
        era = RotationEra.objects.create(
            rotation=rotation,
            effective_from=datetime.combine(start, time(0), tzinfo=UTC) - timedelta(days=1),
            start_date=start,
            handoff_time=time(9, 0),
            shift_unit=RotationEra.Unit.WEEKS,
            shift_length=1,
        )
        # The era starts a week early, so the last engineer held last week and the first one listed
        # (Jonas on Payments, the sign-in the README suggests) is primary this week: his outbox fills.
        for order, email in enumerate(engineers[-1:] + engineers[:-1]):
            RotationParticipant.objects.create(era=era, user=users[email], order=order)
        policy = EscalationPolicy.objects.create(
            team=team, name="Default", repeat=2, ack_timeout=timedelta(hours=4), skip_empty_steps=True
        )
        for order, (delay, kind, position) in enumerate(
            [(timedelta(minutes=5), "position", "primary"), (timedelta(minutes=5), "position", "secondary"),
             (timedelta(minutes=10), "managers", "")]
        ):
            step = EscalationStep.objects.create(policy=policy, order=order, delay=delay)
            EscalationTarget.objects.create(step=step, kind=kind, position=position)
        team.escalation_policy = policy
        team.save(update_fields=["escalation_policy"])

    from escalations.phone import demo_phone_line_seed

    demo_phone_line_seed(teams, users)
    for extension in DEMO_EXTENSIONS:
        extension(teams, users)

    described = [
        ("staff@example.com", "staff (everything, admin at /admin/)"),
        ("maria@example.com", "manager of Payments"),
        ("jonas@example.com", "engineer on Payments and Customer Support"),
        ("viewer@example.com", "viewer (read only)"),
    ]
    return DemoSummary(created=created, users=[(e, DEMO_PASSWORD, d) for e, d in described])
