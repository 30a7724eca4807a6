"""A realistic demo: teams, primary/secondary rotations, escalation policies, people, one
PagerDuty-compatible and one Alertmanager integration per team, a heartbeat, and three incidents in
lived-in states (triggered minutes ago, acknowledged with a note, resolved yesterday).

Idempotent: running it again changes nothing. Other parts of Backstop add their demo data through
`DEMO_EXTENSIONS`. Incidents go through the services with `now` passed, so their timelines, pages
and escalation are the real thing (pages are sent after commit: the demo's outbox shows them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from escalations.incidents import services
from escalations.intake import apply as intake_apply
from escalations.models import EscalationPolicy, EscalationStep, EscalationTarget, Heartbeat, Incident, Integration
from escalations.phone.demo import demo_phone_line_seed
from portal.models import ContactMethod, NotificationRule, User
from rotations.models import Membership, NotificationPreference, Rotation, RotationEra, RotationParticipant, Team

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
    (
        "Payments",
        "Europe/Berlin",
        "maria@example.com",
        ["jonas@example.com", "aisha@example.com", "tom@example.com", "lena@example.com"],
    ),
    (
        "Platform",
        "America/Chicago",
        "carlos@example.com",
        ["emily@example.com", "noah@example.com", "olivia@example.com", "tom@example.com"],
    ),
    (
        "Customer Support",
        "Europe/London",
        "aisha@example.com",
        ["lena@example.com", "jonas@example.com", "noah@example.com"],
    ),
]


@dataclass
class DemoSummary:
    created: bool
    users: list[tuple[str, str, str]]  # email, password, role description
    integrations: list[tuple[str, str, str]] = field(default_factory=list)  # team, integration, URL to post to


DEMO_EXTENSIONS: list[Callable[[dict[str, Team], dict[str, User]], None]] = []


def _phone_for(index: int) -> str:
    return f"+1555010{index:04d}"


def _url(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def demo_integrations_seed(teams: dict[str, Team], now: datetime) -> list[tuple[str, str, str]]:
    """Per team a PagerDuty-compatible and an Alertmanager integration; Platform's nightly backup heartbeat."""
    out = []
    for name, team in teams.items():
        pd, _ = Integration.objects.get_or_create(
            team=team, name="PagerDuty-compatible", defaults={"kind": Integration.Kind.PAGERDUTY}
        )
        am, _ = Integration.objects.get_or_create(
            team=team, name="Prometheus Alertmanager", defaults={"kind": Integration.Kind.ALERTMANAGER}
        )
        out.append((name, pd.name, f"{_url(reverse('intake:pagerduty-enqueue'))}  (routing_key {pd.key})"))
        out.append((name, am.name, _url(reverse("intake:alertmanager", args=[am.key]))))
    platform = teams.get("Platform")
    if platform is not None:
        # A day's interval: the demo does not open a "missed heartbeat" incident on its own within minutes.
        hb, _ = Heartbeat.objects.get_or_create(
            team=platform,
            name="Nightly backup",
            defaults={
                "interval": timedelta(days=1),
                "grace": timedelta(hours=1),
                "last_ping_at": now,
                "created_at": now,
            },
        )
        out.append(("Platform", "Heartbeat: Nightly backup", _url(reverse("intake:heartbeat", args=[hb.token]))))
    return out


DEMO_DEDUP = "demo-"


def demo_incidents_seed(teams: dict[str, Team], users: dict[str, User], now: datetime) -> None:
    """Three incidents through the services, once: triggered 7 minutes ago (Payments, via its Alertmanager
    integration), acknowledged with a note (Platform, via the PagerDuty-compatible API), resolved yesterday
    (Customer Support, raised by hand)."""
    if Incident.objects.filter(dedup_key__startswith=DEMO_DEDUP).exists():
        return
    payments, platform, support = teams.get("Payments"), teams.get("Platform"), teams.get("Customer Support")
    if payments is not None:
        fired = now - timedelta(minutes=7)
        intake_apply.alertmanager_process(
            integration=Integration.objects.get(team=payments, kind=Integration.Kind.ALERTMANAGER),
            body={
                "version": "4",
                "groupKey": f"{DEMO_DEDUP}checkout-latency",
                "status": "firing",
                "receiver": "backstop",
                "groupLabels": {"alertname": "CheckoutLatencyHigh"},
                "alerts": [
                    {
                        "status": "firing",
                        "startsAt": fired.isoformat(),
                        "labels": {"alertname": "CheckoutLatencyHigh", "severity": "critical", "service": "checkout"},
                        "annotations": {
                            "summary": "Checkout p99 latency above 2 s for 5 minutes",
                            "runbook_url": "https://runbooks.example.com/checkout-latency",
                        },
                    }
                ],
            },
            now=fired,
        )
    if platform is not None:
        started = now - timedelta(minutes=50)
        pd = Integration.objects.get(team=platform, kind=Integration.Kind.PAGERDUTY)
        intake_apply.pagerduty_event_process(
            integration_key=None,
            body={
                "routing_key": pd.key,
                "event_action": "trigger",
                "dedup_key": f"{DEMO_DEDUP}db-disk",
                "payload": {
                    "summary": "Disk 91% full on db-2 (/var/lib/postgresql)",
                    "source": "db-2",
                    "severity": "warning",
                    "component": "postgresql",
                },
            },
            now=started,
        )
        incident = Incident.objects.get(team=platform, dedup_key=f"{DEMO_DEDUP}db-disk")
        engineer = users["emily@example.com"]
        services.incident_acknowledge(incident=incident, by=engineer, via="web", now=started + timedelta(minutes=4))
        services.incident_note_add(
            incident=incident,
            by=engineer,
            via="web",
            now=started + timedelta(minutes=12),
            text="WAL archive is lagging; cleared 40 GB of old base backups. Watching until the archiver catches up.",
        )
    if support is not None:
        raised = datetime.combine(now.date() - timedelta(days=1), time(14, 5), tzinfo=UTC)
        manager = users["aisha@example.com"]
        incident = services.incident_trigger(
            team=support,
            title="Help-desk e-mails not arriving",
            severity="error",
            source="manual",
            dedup_key=f"{DEMO_DEDUP}helpdesk-mail",
            details="Customers report no ticket confirmations since 13:40.",
            actor=manager,
            via="web",
            now=raised,
        ).incident
        responder = users["lena@example.com"]
        services.incident_acknowledge(incident=incident, by=responder, via="sms", now=raised + timedelta(minutes=6))
        services.incident_resolve(
            incident=incident,
            by=responder,
            via="web",
            now=raised + timedelta(hours=1, minutes=5),
            note="The mail relay's TLS certificate had expired; renewed and the queue drained.",
        )


@transaction.atomic
def demo_seed(*, today: date | None = None, now: datetime | None = None) -> DemoSummary:
    now = now or datetime.now(UTC)
    today = today or now.date()
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
            verified = now
            sms = ContactMethod.objects.create(user=user, kind="sms", value=_phone_for(index), verified_at=verified)
            voice = ContactMethod.objects.create(user=user, kind="voice", value=_phone_for(index), verified_at=verified)
            mail = ContactMethod.objects.create(user=user, kind="email", value=email, verified_at=verified)
            NotificationRule.objects.create(user=user, contact_method=sms, delay=timedelta(0), order=0)
            NotificationRule.objects.create(user=user, contact_method=mail, delay=timedelta(0), order=1)
            NotificationRule.objects.create(user=user, contact_method=voice, delay=timedelta(minutes=2), order=2)
            # Shift notices by SMS too, so handovers and reminders show up in the demo's outbox.
            NotificationPreference.objects.create(
                user=user,
                reminder_kinds=["email", "sms"],
                handover_kinds=["email", "sms"],
                roster_change_kinds=["email", "sms"],
            )
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
            [
                (timedelta(minutes=5), "position", "primary"),
                (timedelta(minutes=5), "position", "secondary"),
                (timedelta(minutes=10), "managers", ""),
            ]
        ):
            step = EscalationStep.objects.create(policy=policy, order=order, delay=delay)
            EscalationTarget.objects.create(step=step, kind=kind, position=position)
        team.escalation_policy = policy
        team.save(update_fields=["escalation_policy"])

    demo_phone_line_seed(teams, users)
    integrations = demo_integrations_seed(teams, now)
    demo_incidents_seed(teams, users, now)
    for extension in DEMO_EXTENSIONS:
        extension(teams, users)

    described = [
        ("staff@example.com", "staff (everything, admin at /admin/)"),
        ("maria@example.com", "manager of Payments"),
        ("jonas@example.com", "engineer on Payments and Customer Support"),
        ("viewer@example.com", "viewer (read only)"),
    ]
    return DemoSummary(created=created, users=[(e, DEMO_PASSWORD, d) for e, d in described], integrations=integrations)
