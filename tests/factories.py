"""factory_boy factories shared by every test package."""

from datetime import UTC, date, datetime, time, timedelta

import factory
from django.utils import timezone

from escalations.models import (
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Heartbeat,
    Incident,
    Integration,
    MaintenanceWindow,
    Page,
)
from portal.models import ContactMethod, NotificationRule, User
from rotations.models import Exclusion, Membership, Override, Rotation, RotationEra, RotationParticipant, Team

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Sequence(lambda n: f"User {n}")
    time_zone = "Europe/Berlin"
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    is_staff = True


class ContactMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactMethod

    user = factory.SubFactory(UserFactory)
    kind = ContactMethod.Kind.SMS
    value = factory.Sequence(lambda n: f"+1555020{n:04d}")
    verified_at = factory.LazyFunction(timezone.now)


class NotificationRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationRule

    contact_method = factory.SubFactory(ContactMethodFactory)
    user = factory.SelfAttribute("contact_method.user")
    delay = timedelta(0)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")
    time_zone = "Europe/Berlin"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ENGINEER


class RotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rotation

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Rotation {n}")
    time_zone = "Europe/Berlin"
    positions = factory.LazyFunction(lambda: ["primary", "secondary"])


class RotationEraFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RotationEra
        skip_postgeneration_save = True

    rotation = factory.SubFactory(RotationFactory)
    effective_from = datetime(2026, 1, 1, tzinfo=UTC)
    start_date = date(2026, 1, 5)
    handoff_time = time(9, 0)
    shift_unit = RotationEra.Unit.WEEKS
    shift_length = 1

    @factory.post_generation
    def participants(obj, create, extracted, **kwargs):
        if create and extracted:
            for order, user in enumerate(extracted):
                RotationParticipant.objects.create(era=obj, user=user, order=order)


class ExclusionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Exclusion

    user = factory.SubFactory(UserFactory)
    start = T0
    end = factory.LazyAttribute(lambda o: o.start + timedelta(days=3))


class OverrideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Override

    rotation = factory.SubFactory(RotationFactory)
    user = factory.SubFactory(UserFactory)
    start = T0
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=1))
    position = "primary"


class EscalationPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationPolicy

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Policy {n}")
    repeat = 0


class EscalationStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationStep

    policy = factory.SubFactory(EscalationPolicyFactory)
    order = factory.Sequence(lambda n: n)
    delay = timedelta(minutes=5)


class EscalationTargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationTarget

    step = factory.SubFactory(EscalationStepFactory)
    kind = EscalationTarget.Kind.POSITION
    position = "primary"


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Incident

    team = factory.SubFactory(TeamFactory)
    title = factory.Sequence(lambda n: f"Incident {n}")
    created_at = factory.LazyFunction(timezone.now)


class PageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Page

    incident = factory.SubFactory(IncidentFactory)
    cycle = 0
    step = 0
    loop = 0
    contact_method = factory.SubFactory(ContactMethodFactory)
    user = factory.SelfAttribute("contact_method.user")
    rule_index = factory.Sequence(lambda n: n % 1000)
    channel = factory.SelfAttribute("contact_method.kind")
    destination = factory.SelfAttribute("contact_method.value")
    due_at = factory.LazyFunction(timezone.now)


class IntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Integration

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Integration {n}")
    kind = Integration.Kind.PAGERDUTY


class HeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Heartbeat

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Nightly job {n}")
    interval = timedelta(minutes=10)
    grace = timedelta(minutes=2)
    created_at = T0


class MaintenanceWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaintenanceWindow

    team = factory.SubFactory(TeamFactory)
    start = T0
    end = factory.LazyAttribute(lambda o: o.start + timedelta(hours=2))
    reason = "Database upgrade"
