"""ORM -> resolver specs, for the handover/reminder/gap jobs.

Temporary: the roster branch's ``rotations.selectors.rotation_specs_for_teams`` will own this; until it
lands on main the jobs load what they need here (the lead folds it into the selector).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from rotations import schedule
from rotations.models import Exclusion, Override, Rotation


@dataclass(frozen=True)
class TeamSpecs:
    """Everything the resolver needs for one team over a window."""

    team_id: int
    rotations: dict[int, Rotation]
    specs: tuple[schedule.RotationSpec, ...]
    exclusions: tuple[schedule.Exclusion, ...]
    overrides: tuple[schedule.Override, ...]

    def spec(self, rotation_id: int) -> schedule.RotationSpec:
        return next(s for s in self.specs if s.id == rotation_id)


def _window(item: dict) -> schedule.Window:
    return schedule.Window(
        start=time.fromisoformat(item["start"]), end=time.fromisoformat(item["end"]), weekday=item.get("weekday")
    )


def rotation_spec_build(rotation: Rotation) -> schedule.RotationSpec:
    """Needs ``eras`` and their ``participant_links`` prefetched for speed (works without)."""
    tz = ZoneInfo(rotation.time_zone)
    eras = []
    for era in sorted(rotation.eras.all(), key=lambda e: e.effective_from):
        links = sorted(era.participant_links.all(), key=lambda p: p.order)
        eras.append(
            schedule.Era(
                effective_from=era.effective_from,
                anchor=datetime.combine(era.start_date, era.handoff_time, tzinfo=tz),
                unit=era.shift_unit,
                length=era.shift_length,
                participants=tuple(p.user_id for p in links),
                restrictions=tuple(_window(r) for r in era.restrictions or ()),
            )
        )
    return schedule.RotationSpec(
        id=rotation.pk,
        team_id=rotation.team_id,
        time_zone=rotation.time_zone,
        positions=tuple(rotation.positions),
        eras=tuple(eras),
    )


def team_specs_load(*, team_ids: Iterable[int], since: datetime, until: datetime) -> dict[int, TeamSpecs]:
    """Rotations of these teams plus the exclusions/overrides intersecting [since, until)."""
    rotations = list(
        Rotation.objects.filter(team_id__in=list(team_ids))
        .select_related("team")
        .prefetch_related("eras__participant_links")
        .order_by("team_id", "name", "pk")
    )
    specs = {r.pk: rotation_spec_build(r) for r in rotations}
    user_ids = {u for s in specs.values() for era in s.eras for u in era.participants}
    overrides = [
        schedule.Override(
            rotation_id=o.rotation_id, user_id=o.user_id, start=o.start, end=o.end,
            position=o.position or None, replaces_user_id=o.replaces_user_id, id=o.pk,
        )
        for o in Override.objects.filter(rotation_id__in=list(specs), start__lt=until, end__gt=since)
    ]
    user_ids |= {o.user_id for o in overrides}
    exclusions = [
        schedule.Exclusion(user_id=x.user_id, start=x.start, end=x.end, id=x.pk, reason=x.reason)
        for x in Exclusion.objects.filter(user_id__in=user_ids, start__lt=until, end__gt=since)
    ]
    out: dict[int, TeamSpecs] = {}
    for team_id in {r.team_id for r in rotations}:
        team_rotations = {r.pk: r for r in rotations if r.team_id == team_id}
        out[team_id] = TeamSpecs(
            team_id=team_id,
            rotations=team_rotations,
            specs=tuple(specs[rid] for rid in team_rotations),
            exclusions=tuple(exclusions),
            overrides=tuple(o for o in overrides if o.rotation_id in team_rotations),
        )
    return out
