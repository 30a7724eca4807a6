"""Who a policy step reaches right now: rotation positions, people, the team, its managers.

One resolver serves a whole sweep batch: on-call and memberships are loaded once for every team
in the batch, so the cost per escalation step is a dictionary lookup, not a round of queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from escalations.engine import StepSpec, TargetKind
from rotations.models import Membership
from rotations.selectors import teams_oncall_get


class TargetResolver:
    def __init__(self, *, team_ids: Iterable[int], at: datetime) -> None:
        self.team_ids = sorted(set(team_ids))
        self.at = at
        self._oncall: dict[int, dict[str, list]] | None = None
        self._members: dict[int, list[tuple[int, str]]] | None = None

    def _oncall_for(self, team_id: int) -> dict[str, list]:
        if self._oncall is None:
            self._oncall = teams_oncall_get(team_ids=self.team_ids, at=self.at)
        return self._oncall.get(team_id, {})

    def _members_for(self, team_id: int) -> list[tuple[int, str]]:
        if self._members is None:
            self._members = {tid: [] for tid in self.team_ids}
            rows = Membership.objects.filter(team_id__in=self.team_ids, user__is_active=True).values_list(
                "team_id", "user_id", "role"
            )
            for tid, uid, role in rows:
                self._members[tid].append((uid, role))
        return self._members.get(team_id, [])

    def users_for(self, *, team_id: int, step: StepSpec) -> frozenset[int]:
        user_ids: set[int] = set()
        for target in step.targets:
            if target.kind is TargetKind.USER and target.user_id is not None:
                user_ids.add(target.user_id)
            elif target.kind is TargetKind.TEAM:
                user_ids.update(uid for uid, role in self._members_for(team_id) if role != Membership.Role.VIEWER)
            elif target.kind is TargetKind.MANAGERS:
                user_ids.update(uid for uid, role in self._members_for(team_id) if role == Membership.Role.MANAGER)
            elif target.kind is TargetKind.POSITION:
                for shift in self._oncall_for(team_id).get(target.position, ()):
                    if shift.user_id is not None:
                        user_ids.add(shift.user_id)
        return frozenset(user_ids)
