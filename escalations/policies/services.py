"""Escalation policy writes: create/update with their steps and targets, audited.

Incidents in flight keep their frozen policy snapshot, so an edit here never changes an escalation
that has already started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from escalations.models import EscalationPolicy, EscalationStep, EscalationTarget
from escalations.policies.spec import policy_spec_build
from escalations.support_hours import SupportHours
from rotations.audit import audit_record, diff
from rotations.models import AuditEntry, Membership, Team


@dataclass
class TargetInput:
    kind: str
    position: str = ""
    user: Any = None


@dataclass
class StepInput:
    delay: timedelta
    targets: Sequence[TargetInput] = field(default_factory=list)


def _state(policy: EscalationPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "description": policy.description,
        "repeat": policy.repeat,
        "ack_timeout": policy.ack_timeout.total_seconds() if policy.ack_timeout else None,
        "auto_resolve_after": policy.auto_resolve_after.total_seconds() if policy.auto_resolve_after else None,
        "skip_empty_steps": policy.skip_empty_steps,
        "reassign_on_handover": policy.reassign_on_handover,
        "support_hours": policy.support_hours or None,
        "raise_urgency_after": policy.raise_urgency_after.total_seconds() if policy.raise_urgency_after else None,
        "steps": [
            {
                "delay": s.delay.total_seconds(),
                "targets": [{"kind": t.kind, "position": t.position, "user": t.user_id} for t in s.targets.all()],
            }
            for s in policy.steps.order_by("order").prefetch_related("targets")
        ],
    }


def support_hours_clean(value: Any) -> dict[str, Any]:
    """Support hours as stored ({} = always), or ValidationError on `support_hours` saying what is wrong."""
    try:
        hours = SupportHours.from_json(value)
    except ValueError as exc:
        raise ValidationError({"support_hours": [f"{str(exc)[:1].upper()}{str(exc)[1:]}."]}) from exc
    return hours.to_json() if hours is not None else {}


def _validate(  # noqa: C901 (settings and steps checks; to split)
    team: Team,
    *,
    name: str,
    repeat: int | None,
    ack_timeout,
    auto_resolve_after,
    steps: Sequence[StepInput],
    raise_urgency_after: timedelta | None = None,
) -> None:
    errors: dict[str, list[str]] = {}
    if not (name or "").strip():
        errors["name"] = ["Give the policy a name."]
    if repeat is not None and repeat < 0:
        errors["repeat"] = ["Repeat must be 0 or more (empty = until acknowledged)."]
    for label, value in (
        ("ack_timeout", ack_timeout),
        ("auto_resolve_after", auto_resolve_after),
        ("raise_urgency_after", raise_urgency_after),
    ):
        if value is not None and value <= timedelta(0):
            errors[label] = ["Must be longer than zero, or empty for never."]
    positions = {p for r in team.rotations.all() for p in r.positions}
    # Viewers read the roster but are never paged, so only engineers and managers may be targets.
    members = set(
        Membership.objects.filter(
            team=team, role__in=(Membership.Role.MANAGER, Membership.Role.ENGINEER), user__is_active=True
        ).values_list("user_id", flat=True)
    )
    step_errors = []
    for index, step in enumerate(steps, start=1):
        if step.delay < timedelta(0):
            step_errors.append(f"Step {index}: the delay cannot be negative.")
        if not step.targets:
            step_errors.append(
                f"Step {index}: choose at least one target (a position, a person, the team or its managers)."
            )
        for t in step.targets:
            if t.kind == EscalationTarget.Kind.POSITION and positions and t.position not in positions:
                step_errors.append(
                    f"Step {index}: no rotation of {team} has a position {t.position!r} "
                    f"(positions: {', '.join(sorted(positions))})."
                )
            if t.kind == EscalationTarget.Kind.USER and (t.user is None or t.user.pk not in members):
                step_errors.append(f"Step {index}: {t.user} is not an engineer or manager of {team}.")
    if step_errors:
        errors["steps"] = step_errors
    if repeat is None and steps and all(s.delay == timedelta(0) for s in steps):
        errors.setdefault("repeat", []).append(
            "Repeating until acknowledged needs at least one step with a delay, or it would page non-stop."
        )
    if errors:
        raise ValidationError(errors)


def _steps_write(policy: EscalationPolicy, steps: Sequence[StepInput]) -> None:
    policy.steps.all().delete()
    for order, step in enumerate(steps):
        row = EscalationStep.objects.create(policy=policy, order=order, delay=step.delay)
        EscalationTarget.objects.bulk_create(
            EscalationTarget(
                step=row,
                kind=t.kind,
                position=t.position if t.kind == "position" else "",
                user=t.user if t.kind == "user" else None,
            )
            for t in step.targets
        )
    # The engine must accept what we stored (it is what incidents will freeze).

    try:
        policy_spec_build(policy)
    except ValueError as exc:
        raise ValidationError({"steps": [str(exc)]}) from exc


@transaction.atomic
def policy_create(
    *,
    team: Team,
    name: str,
    steps: Sequence[StepInput],
    actor,
    description: str = "",
    repeat: int | None = 0,
    ack_timeout: timedelta | None = None,
    auto_resolve_after: timedelta | None = None,
    skip_empty_steps: bool = False,
    reassign_on_handover: bool = True,
    make_default: bool = False,
    support_hours: dict[str, Any] | None = None,
    raise_urgency_after: timedelta | None = None,
) -> EscalationPolicy:
    _validate(
        team,
        name=name,
        repeat=repeat,
        ack_timeout=ack_timeout,
        auto_resolve_after=auto_resolve_after,
        steps=steps,
        raise_urgency_after=raise_urgency_after,
    )
    support_hours = support_hours_clean(support_hours)
    if EscalationPolicy.objects.filter(team=team, name=name.strip()).exists():
        raise ValidationError({"name": [f"{team} already has a policy called {name.strip()!r}."]})
    policy = EscalationPolicy.objects.create(
        team=team,
        name=name.strip(),
        description=description,
        repeat=repeat,
        ack_timeout=ack_timeout,
        auto_resolve_after=auto_resolve_after,
        skip_empty_steps=skip_empty_steps,
        reassign_on_handover=reassign_on_handover,
        support_hours=support_hours,
        raise_urgency_after=raise_urgency_after,
    )
    _steps_write(policy, steps)
    if make_default or team.escalation_policy_id is None:
        Team.objects.filter(pk=team.pk).update(escalation_policy=policy)
        team.escalation_policy = policy
    audit_record(actor=actor, team=team, action=AuditEntry.Action.CREATE, obj=policy, changes=diff({}, _state(policy)))
    return policy


@transaction.atomic
def policy_update(
    *,
    policy: EscalationPolicy,
    name: str,
    steps: Sequence[StepInput],
    actor,
    description: str = "",
    repeat: int | None = 0,
    ack_timeout: timedelta | None = None,
    auto_resolve_after: timedelta | None = None,
    skip_empty_steps: bool = False,
    reassign_on_handover: bool = True,
    make_default: bool = False,
    support_hours: dict[str, Any] | None = None,
    raise_urgency_after: timedelta | None = None,
) -> EscalationPolicy:
    policy = EscalationPolicy.objects.select_for_update().select_related("team").get(pk=policy.pk)
    team = policy.team
    _validate(
        team,
        name=name,
        repeat=repeat,
        ack_timeout=ack_timeout,
        auto_resolve_after=auto_resolve_after,
        steps=steps,
        raise_urgency_after=raise_urgency_after,
    )
    support_hours = support_hours_clean(support_hours)
    if EscalationPolicy.objects.filter(team=team, name=name.strip()).exclude(pk=policy.pk).exists():
        raise ValidationError({"name": [f"{team} already has a policy called {name.strip()!r}."]})
    before = _state(policy)
    policy.name, policy.description, policy.repeat = name.strip(), description, repeat
    policy.ack_timeout, policy.auto_resolve_after = ack_timeout, auto_resolve_after
    policy.skip_empty_steps, policy.reassign_on_handover = skip_empty_steps, reassign_on_handover
    policy.support_hours, policy.raise_urgency_after = support_hours, raise_urgency_after
    policy.save()
    _steps_write(policy, steps)
    if make_default and team.escalation_policy_id != policy.pk:
        Team.objects.filter(pk=team.pk).update(escalation_policy=policy)
    changes = diff(before, _state(policy))
    if changes:
        audit_record(actor=actor, team=team, action=AuditEntry.Action.UPDATE, obj=policy, changes=changes)
    return policy


@transaction.atomic
def policy_delete(*, policy: EscalationPolicy, actor) -> None:
    """Delete a policy. Teams and integrations that named it fall back to none (SET_NULL); incidents in
    flight keep their frozen snapshot."""
    policy = EscalationPolicy.objects.select_for_update().select_related("team").get(pk=policy.pk)
    audit_record(
        actor=actor, team=policy.team, action=AuditEntry.Action.DELETE, obj=policy, changes=diff(_state(policy), {})
    )
    policy.delete()


def policy_state_get(*, policy_id: int) -> dict[str, Any] | None:
    """The audited shape of a policy (settings, steps, targets), or None if it does not exist."""
    policy = EscalationPolicy.objects.filter(pk=policy_id).first()
    return _state(policy) if policy is not None else None


def policy_change_record(*, policy: EscalationPolicy, before: dict[str, Any] | None, actor) -> AuditEntry | None:
    """Audit a change made outside the policy services (the Django admin and its inlines): the
    difference between `before` (from policy_state_get, or None for a new policy) and now."""
    changes = diff(before or {}, _state(policy))
    if not changes:
        return None
    action = AuditEntry.Action.CREATE if before is None else AuditEntry.Action.UPDATE
    return audit_record(actor=actor, team=policy.team, action=action, obj=policy, changes=changes)
