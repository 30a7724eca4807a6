"""The portal's one door to the roster: rotations.selectors answers, this turns shifts into display lines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from portal.models import User
from rotations import selectors


@dataclass(frozen=True)
class OncallLine:
    """One position holder (or a gap) as the portal shows it."""

    team_id: int
    rotation_id: int
    rotation_name: str
    position: str
    user: User | None
    start: datetime
    until: datetime
    reason: str  # rotation | cover | override | gap
    covering: User | None  # the person this holder stands in for
    note: str  # "covering for Ann (vacation)", "override: swap for dentist"
    team_name: str = ""  # two teams' rotations are often both called "Weekly"

    @property
    def is_gap(self) -> bool:
        return self.user is None


def _exclusion_word(kind: str, reason: str) -> str:
    from rotations.models import Exclusion

    word = Exclusion.Kind(kind).label.lower() if kind in Exclusion.Kind.values else kind
    return f"{word}: {reason}" if reason else word


def shifts_describe(shifts: Iterable) -> list[OncallLine]:
    """Turn resolver Shifts into display lines: four queries whatever the number of shifts."""
    from rotations.models import Exclusion, Override, Rotation

    shifts = list(shifts)
    user_ids = {u for sh in shifts for u in (sh.user_id, sh.scheduled_user_id) if u is not None}
    override_ids = {sh.override_id for sh in shifts if sh.override_id}
    exclusion_ids = {sh.exclusion_id for sh in shifts if sh.exclusion_id}
    rotation_ids = {sh.rotation_id for sh in shifts}
    users = User.objects.in_bulk(user_ids) if user_ids else {}
    overrides = dict(Override.objects.filter(pk__in=override_ids).values_list("pk", "reason")) if override_ids else {}
    exclusions = (
        {pk: (kind, reason) for pk, kind, reason in
         Exclusion.objects.filter(pk__in=exclusion_ids).values_list("pk", "kind", "reason")}
        if exclusion_ids else {}
    )
    rotations = (
        {pk: (team_id, name, team_name) for pk, team_id, name, team_name in
         Rotation.objects.filter(pk__in=rotation_ids).values_list("pk", "team_id", "name", "team__name")}
        if rotation_ids else {}
    )
    lines = []
    for sh in shifts:
        user = users.get(sh.user_id) if sh.user_id is not None else None
        scheduled = users.get(sh.scheduled_user_id) if sh.scheduled_user_id is not None else None
        reason = str(sh.reason)
        covering = scheduled if scheduled is not None and (user is None or scheduled.pk != user.pk) else None
        note = ""
        if reason == "gap":
            note = "Nobody holds this position"
            if covering is not None and sh.exclusion_id in exclusions:
                note += f" ({covering.display_name} is away: {_exclusion_word(*exclusions[sh.exclusion_id])})"
        elif covering is not None:
            why = ""
            if sh.exclusion_id in exclusions:
                why = _exclusion_word(*exclusions[sh.exclusion_id])
            elif sh.override_id in overrides and overrides[sh.override_id]:
                why = overrides[sh.override_id]
            elif reason == "override":
                why = "override"
            note = f"covering for {covering.display_name}" + (f" ({why})" if why else "")
        elif reason == "override":
            note = "override" + (f": {overrides[sh.override_id]}" if overrides.get(sh.override_id) else "")
        team_id, rotation_name, team_name = rotations.get(sh.rotation_id, (None, "", ""))
        lines.append(
            OncallLine(
                team_id=team_id, rotation_id=sh.rotation_id, rotation_name=rotation_name, position=sh.position,
                user=user, start=sh.start, until=sh.end, reason=reason, covering=covering, note=note,
                team_name=team_name,
            )
        )
    return lines


def teams_oncall_lines(*, team_ids: Iterable[int], at: datetime) -> dict[int, list[OncallLine]]:
    """team id -> on-call lines at `at`."""
    team_ids = list(team_ids)
    if not team_ids:
        return {}
    by_team = selectors.teams_oncall_get(team_ids=team_ids, at=at)
    shifts = [sh for positions in by_team.values() for lst in positions.values() for sh in lst]
    out: dict[int, list[OncallLine]] = {tid: [] for tid in team_ids}
    for line in shifts_describe(shifts):
        out.setdefault(line.team_id, []).append(line)
    return out


def user_shift_lines(*, user: User, since: datetime, until: datetime) -> list[OncallLine]:
    return shifts_describe(selectors.user_shifts_get(user=user, since=since, until=until))
