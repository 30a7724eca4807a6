"""Who a policy step reaches right now: rotation positions, people, the team, its managers."""

from __future__ import annotations

from datetime import datetime

from escalations.engine import StepSpec, TargetKind
from rotations.models import Membership, Team


def step_targets_resolve(*, team: Team, step: StepSpec, at: datetime) -> frozenset[int]:
    user_ids: set[int] = set()
    for target in step.targets:
        if target.kind is TargetKind.USER and target.user_id is not None:
            user_ids.add(target.user_id)
        elif target.kind is TargetKind.TEAM:
            user_ids.update(
                Membership.objects.filter(team=team, user__is_active=True)
                .exclude(role=Membership.Role.VIEWER)
                .values_list("user_id", flat=True)
            )
        elif target.kind is TargetKind.MANAGERS:
            user_ids.update(
                Membership.objects.filter(team=team, role=Membership.Role.MANAGER, user__is_active=True)
                .values_list("user_id", flat=True)
            )
        elif target.kind is TargetKind.POSITION:
            from rotations.selectors import team_oncall_get

            for shift in team_oncall_get(team=team, at=at).get(target.position, ()):
                if shift.user_id is not None:
                    user_ids.add(shift.user_id)
    return frozenset(user_ids)
