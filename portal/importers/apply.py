"""Write a plan through the services (the one write path, with audit), idempotently.

Every object made is recorded in ImportedObject under the vendor's id, so a second run finds it and
creates nothing new. A dry run runs exactly the same code inside a transaction that is rolled back:
the report says what would be created and what would be refused, and nothing is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse

from escalations.intake.services import integration_create
from escalations.models import EscalationPolicy, Integration
from escalations.policies.services import StepInput, TargetInput, policy_create
from portal.importers.plan import Plan, RotationPlan
from portal.models import ContactMethod, ImportedObject, NotificationRule, User
from portal.services import contact_method_add, notification_rule_add
from rotations.audit import audit_record, diff
from rotations.models import AuditEntry, Membership, Override, Rotation, Team
from rotations.services.memberships import membership_create
from rotations.services.overrides import override_create
from rotations.services.rotations import rotation_create, rotation_definition_change
from rotations.services.teams import team_create


class _DryRun(Exception):
    """Raised at the end of a dry run to roll everything back."""


@dataclass
class Line:
    action: str  # created, exists, refused, invited
    kind: str
    name: str
    detail: str = ""


@dataclass
class IntegrationUrl:
    name: str
    team: str
    url: str
    routing_key: str


@dataclass
class ApplyReport:
    dry_run: bool
    lines: list[Line] = field(default_factory=list)
    integrations: list[IntegrationUrl] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for line in self.lines if line.action == action)


class _Run:
    def __init__(self, plan: Plan, actor: Any, now: datetime, report: ApplyReport) -> None:
        self.plan = plan
        self.source = plan.source
        self.actor = actor
        self.now = now
        self.report = report
        self.users: dict[str, User] = {}
        self.teams: dict[str, Team] = {}
        self.rotations: dict[str, Rotation] = {}
        self.policies: dict[str, EscalationPolicy] = {}

    # ---------------------------------------------------------------- helpers

    def found(self, kind: str, external_id: str, model: type[models.Model]) -> Any:
        row = ImportedObject.objects.filter(source=self.source, kind=kind, external_id=external_id).first()
        if row is None:
            return None
        return model._default_manager.filter(pk=row.object_id).first()

    def record(self, kind: str, external_id: str, obj: models.Model) -> None:
        ImportedObject.objects.create(
            source=self.source,
            kind=kind,
            external_id=external_id,
            object_type=obj._meta.label_lower,
            object_id=obj.pk,
        )

    def line(self, action: str, kind: str, name: str, detail: str = "") -> None:
        self.report.lines.append(Line(action, kind, name, detail))

    def attempt(self, kind: str, name: str, fn: Any) -> Any:
        """Run one object's writes in a savepoint: a refusal is reported and leaves nothing half-written."""
        try:
            with transaction.atomic():
                return fn()
        except ValidationError as exc:
            messages = (
                [m for ms in exc.message_dict.values() for m in ms] if hasattr(exc, "error_dict") else exc.messages
            )
            self.line("refused", kind, name, " ".join(messages))
            return None

    # ---------------------------------------------------------------- users

    def users_apply(self) -> None:
        for plan_user in self.plan.users:
            user = self.found("user", plan_user.external_id, User)
            if user is None:
                user = User.objects.filter(email__iexact=plan_user.email).first()
                if user is not None:
                    self.record("user", plan_user.external_id, user)
                    self.line("exists", "user", plan_user.email, "matched by e-mail")
                else:
                    user = self._invite(plan_user.email, plan_user.name, plan_user.time_zone)
                    self.record("user", plan_user.external_id, user)
                    self.line(
                        "invited", "user", plan_user.email, "created inactive: activate the account to put them on call"
                    )
            self.users[plan_user.external_id] = user
            contacts: dict[str, ContactMethod] = {}
            for contact in plan_user.contacts:
                method = self.found("contact", contact.external_id, ContactMethod)
                if method is None:
                    method = self.attempt(
                        "contact method",
                        f"{plan_user.email}: {contact.value}",
                        lambda c=contact, u=user: self._contact(u, c),
                    )
                if method is not None:
                    contacts[contact.external_id] = method
            for rule in plan_user.rules:
                if self.found("rule", rule.external_id, NotificationRule) is not None:
                    continue
                method = contacts.get(rule.contact_external_id)
                if method is None:
                    continue
                self.attempt(
                    "notification rule",
                    f"{plan_user.email}: {method.value} after {rule.delay_minutes} min",
                    lambda r=rule, m=method, u=user: self._rule(u, m, r),
                )

    def _invite(self, email: str, name: str, time_zone: str) -> User:
        # An invitation: the account exists (so the roster can name it once it is active) but cannot sign in.
        user = User.objects.create_user(email=email, password=None, full_name=name[:150], is_active=False)
        if time_zone:
            user.time_zone = time_zone
            user.save(update_fields=["time_zone"])
        audit_record(
            actor=self.actor,
            team=None,
            action=AuditEntry.Action.CREATE,
            obj=user,
            changes=diff({}, {"email": user.email, "full_name": user.full_name, "is_active": False}),
        )
        return user

    def _contact(self, user: User, contact: Any) -> ContactMethod:
        method = ContactMethod.objects.filter(user=user, kind=contact.kind, value=contact.value).first()
        if method is None:
            method = contact_method_add(user=user, kind=contact.kind, value=contact.value, label=contact.label)
            self.line("created", "contact method", f"{user.email}: {method.value}", "unverified: its owner verifies it")
        self.record("contact", contact.external_id, method)
        return method

    def _rule(self, user: User, method: ContactMethod, rule: Any) -> NotificationRule:
        made = notification_rule_add(
            user=user,
            contact_method=method,
            delay=timedelta(minutes=rule.delay_minutes),
            urgency=rule.urgency,
            now=self.now,
        )
        self.record("rule", rule.external_id, made)
        self.line("created", "notification rule", f"{user.email}: {method.value} after {rule.delay_minutes} min")
        return made

    # ---------------------------------------------------------------- teams

    def teams_apply(self) -> None:
        for plan_team in self.plan.teams:
            team = self.found("team", plan_team.key, Team)
            if team is None:
                team = Team.objects.filter(name=plan_team.name).first()
                if team is not None:
                    self.record("team", plan_team.key, team)
                    self.line("exists", "team", plan_team.name, "an existing team of that name is used")
                else:
                    team = self.attempt(
                        "team",
                        plan_team.name,
                        lambda p=plan_team: self._team(p.key, p.name, p.time_zone),
                    )
                    if team is None:
                        continue
            self.teams[plan_team.key] = team
            for ext in plan_team.members:
                user = self.users.get(ext)
                if user is None or not user.is_active:
                    continue
                if not Membership.objects.filter(team=team, user=user).exists():
                    self.attempt(
                        "membership",
                        f"{user.email} in {team.name}",
                        lambda t=team, u=user: self._member(t, u),
                    )

    def _team(self, key: str, name: str, time_zone: str) -> Team:
        team = team_create(name=name, actor=self.actor, time_zone=time_zone)
        self.record("team", key, team)
        self.line("created", "team", name)
        return team

    def _member(self, team: Team, user: User) -> None:
        membership_create(team=team, user=user, role=Membership.Role.ENGINEER, actor=self.actor)
        self.line("created", "membership", f"{user.email} in {team.name}", "engineer")

    # ---------------------------------------------------------------- rotations

    def rotations_apply(self) -> None:
        for plan_rotation in self.plan.rotations:
            rotation = self.found("rotation", plan_rotation.external_id, Rotation)
            if rotation is not None:
                self.rotations[plan_rotation.external_id] = rotation
                self.line("exists", "rotation", plan_rotation.name)
                continue
            team = self.teams.get(plan_rotation.team_key)
            if team is None:
                self.line("refused", "rotation", plan_rotation.name, "its team was not created")
                continue
            people = {u for era in plan_rotation.eras for u in era.participants}
            waiting = sorted(self.users[u].email for u in people if u in self.users and not self.users[u].is_active)
            unknown = sorted(u for u in people if u not in self.users)
            if waiting or unknown:
                self.line(
                    "refused",
                    "rotation",
                    plan_rotation.name,
                    f"waiting for {', '.join(waiting + unknown)} to be active; run the import again afterwards",
                )
                continue
            made = self.attempt("rotation", plan_rotation.name, lambda p=plan_rotation, t=team: self._rotation(p, t))
            if made is not None:
                self.rotations[plan_rotation.external_id] = made

    def _rotation(self, plan_rotation: RotationPlan, team: Team) -> Rotation:
        first, *later = plan_rotation.eras
        name = plan_rotation.name
        if Rotation.objects.filter(team=team, name=name).exists():
            name = f"{name[:88]} (imported)"
        rotation = rotation_create(
            team=team,
            name=name,
            time_zone=plan_rotation.time_zone,
            positions=[plan_rotation.position],
            start_date=plan_rotation.start_date,
            handoff_time=plan_rotation.handoff_time,
            shift_unit=plan_rotation.unit,
            shift_length=plan_rotation.length,
            participants=[self.users[u] for u in first.participants],
            restrictions=first.restrictions,
            actor=self.actor,
        )
        for era in later:
            rotation_definition_change(
                rotation=rotation,
                effective_from=era.effective_from,
                actor=self.actor,
                participants=[self.users[u] for u in era.participants],
                restrictions=era.restrictions,
                now=self.now,
            )
        self.record("rotation", plan_rotation.external_id, rotation)
        self.line(
            "created", "rotation", name, f"{len(plan_rotation.eras)} definition(s), position {plan_rotation.position}"
        )
        return rotation

    def overrides_apply(self) -> None:
        for plan_override in self.plan.overrides:
            for rotation_id in plan_override.rotation_external_ids:
                key = f"{plan_override.external_id}@{rotation_id}"
                rotation = self.rotations.get(rotation_id)
                user = self.users.get(plan_override.user)
                if rotation is None or self.found("override", key, Override) is not None:
                    continue
                label = f"{rotation.name}: {plan_override.start:%Y-%m-%d %H:%M}–{plan_override.end:%Y-%m-%d %H:%M} UTC"
                if user is None or not user.is_active:
                    self.line("refused", "override", label, "the person taking it is not active")
                    continue
                self.attempt(
                    "override",
                    label,
                    lambda k=key, r=rotation, u=user, p=plan_override, lab=label: self._override(k, r, u, p, lab),
                )

    def _override(self, key: str, rotation: Rotation, user: User, plan_override: Any, label: str) -> None:
        override = override_create(
            rotation=rotation,
            user=user,
            start=plan_override.start,
            end=plan_override.end,
            position=plan_override.position,
            reason=f"Imported from {self.source}",
            actor=self.actor,
        )
        self.record("override", key, override)
        self.line("created", "override", label, f"{user.email} takes {plan_override.position}")

    # ---------------------------------------------------------------- policies, integrations

    def policies_apply(self) -> None:
        for plan_policy in self.plan.policies:
            policy = self.found("policy", plan_policy.external_id, EscalationPolicy)
            if policy is not None:
                self.policies[plan_policy.external_id] = policy
                self.line("exists", "escalation policy", plan_policy.name)
                continue
            team = self.teams.get(plan_policy.team_key)
            if team is None:
                continue
            steps = []
            missing = []
            for step in plan_policy.steps:
                targets = []
                for kind, ref in step.targets:
                    if kind == "position":
                        targets.append(TargetInput(kind="position", position=ref))
                    elif ref in self.users and self.users[ref].is_active:
                        targets.append(TargetInput(kind="user", user=self.users[ref]))
                    else:
                        missing.append(ref)
                steps.append(StepInput(delay=timedelta(minutes=step.delay_minutes), targets=targets))
            if missing:
                self.line(
                    "refused", "escalation policy", plan_policy.name, f"waiting for {', '.join(missing)} to be active"
                )
                continue
            made = self.attempt(
                "escalation policy", plan_policy.name, lambda p=plan_policy, t=team, s=steps: self._policy(p, t, s)
            )
            if made is not None:
                self.policies[plan_policy.external_id] = made

    def _policy(self, plan_policy: Any, team: Team, steps: list[StepInput]) -> EscalationPolicy:
        policy = policy_create(
            team=team, name=plan_policy.name, steps=steps, actor=self.actor, repeat=plan_policy.repeat
        )
        self.record("policy", plan_policy.external_id, policy)
        self.line(
            "created",
            "escalation policy",
            plan_policy.name,
            f"{len(steps)} step(s), repeated {plan_policy.repeat} time(s)",
        )
        return policy

    def integrations_apply(self) -> None:
        for plan_integration in self.plan.integrations:
            integration = self.found("integration", plan_integration.external_id, Integration)
            if integration is None:
                team = self.teams.get(plan_integration.team_key)
                if team is None:
                    continue
                policy = self.policies.get(plan_integration.policy_external_id or "")
                integration = self.attempt(
                    "integration",
                    plan_integration.name,
                    lambda p=plan_integration, t=team, pol=policy: self._integration(p, t, pol),
                )
                if integration is None:
                    continue
            else:
                self.line("exists", "integration", plan_integration.name)
            self.report.integrations.append(
                IntegrationUrl(
                    name=integration.name,
                    team=integration.team.name,
                    url=_intake_url(integration),
                    routing_key=integration.key,
                )
            )

    def _integration(self, plan_integration: Any, team: Team, policy: EscalationPolicy | None) -> Integration:
        integration = integration_create(
            team=team, name=plan_integration.name, kind=plan_integration.kind, actor=self.actor, policy=policy
        )
        self.record("integration", plan_integration.external_id, integration)
        self.line("created", "integration", plan_integration.name, "send events to its new URL with its routing key")
        return integration


def _intake_url(integration: Integration) -> str:
    """Where senders post now (a PagerDuty sender keeps its routing key in the body; the others carry it in the URL)."""
    base = settings.PUBLIC_BASE_URL
    if integration.kind == Integration.Kind.PAGERDUTY:
        return base + reverse("intake:pagerduty-enqueue")
    if integration.kind == Integration.Kind.OPSGENIE:
        return base + reverse("intake:opsgenie-alerts")
    name = "intake:alertmanager" if integration.kind == Integration.Kind.ALERTMANAGER else "intake:generic"
    return base + reverse(name, args=[integration.key])


def plan_apply(*, plan: Plan, actor: Any, now: datetime, dry_run: bool) -> ApplyReport:
    """Create what the plan describes (or, dry_run, say what would be created and keep nothing)."""
    report = ApplyReport(dry_run=dry_run)
    run = _Run(plan, actor, now, report)
    try:
        with transaction.atomic():
            run.users_apply()
            run.teams_apply()
            run.rotations_apply()
            run.overrides_apply()
            run.policies_apply()
            run.integrations_apply()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report
