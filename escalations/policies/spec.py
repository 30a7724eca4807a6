"""The engine's frozen view of an escalation policy."""

from __future__ import annotations

from escalations import engine
from escalations.models import EscalationPolicy
from escalations.support_hours import SupportHours

# --------------------------------------------------------------------------------- policy


def policy_spec_build(policy: EscalationPolicy) -> engine.PolicySpec:
    steps = []
    for step in policy.steps.order_by("order").prefetch_related("targets"):
        targets = tuple(
            engine.TargetSpec(kind=t.kind, position=t.position, user_id=t.user_id) for t in step.targets.all()
        )
        steps.append(engine.StepSpec(delay=step.delay, targets=targets))
    return engine.PolicySpec(
        steps=tuple(steps),
        repeat=policy.repeat,
        ack_timeout=policy.ack_timeout,
        auto_resolve_after=policy.auto_resolve_after,
        skip_empty_steps=policy.skip_empty_steps,
        support_hours=SupportHours.from_json(policy.support_hours),
        raise_urgency_after=policy.raise_urgency_after,
    )
