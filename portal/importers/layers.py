"""Layered schedules (PagerDuty layers, Grafana OnCall levels, Opsgenie rotations) -> Backstop rotations.

Pure. A layer is a rotation of people with a turn length, a weekly mask (its restrictions, in the
schedule's local time), a start and maybe an end; a higher layer wins wherever it covers. Each layer
becomes one rotation holding the schedule's position; its restriction windows lose the weekly windows of
the layers above it, era by era between the layers' starts and ends, so at any moment at most one layer
rotation is active. A layer before its start or after its end is an era with nobody in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.importers.plan import EraPlan, Mask, Plan, RotationPlan, Unmapped, mask_subtract, mask_windows


@dataclass
class Layer:
    external_id: str
    name: str
    start: datetime
    end: datetime | None
    anchor: datetime  # a handoff at which users[0] starts a turn
    turn_seconds: int
    users: list[str]
    mask: Mask


def unit_of(seconds: int) -> tuple[str, int] | None:
    if seconds % (7 * 86400) == 0:
        return "weeks", seconds // (7 * 86400)
    if seconds % 86400 == 0:
        return "days", seconds // 86400
    if seconds % 3600 == 0:
        return "hours", seconds // 3600
    return None


def shift_index(*, unit: tuple[str, int], anchor: datetime, at: datetime, tz: ZoneInfo) -> int:
    """Which turn runs at `at`. Day and week turns hand off at the same local time across a DST change
    (as PagerDuty, Opsgenie and Grafana OnCall do); hour turns count elapsed hours."""
    if unit[0] == "hours":
        return int((at - anchor) // timedelta(hours=unit[1]))
    days = unit[1] * (7 if unit[0] == "weeks" else 1)
    a = anchor.astimezone(tz).replace(tzinfo=None)
    b = at.astimezone(tz).replace(tzinfo=None)
    return int((b - a) // timedelta(days=days))


def _step(at: datetime, unit: tuple[str, int], turns: int, tz: ZoneInfo) -> datetime:
    if unit[0] == "hours":
        return at + timedelta(hours=unit[1] * turns)
    days = unit[1] * (7 if unit[0] == "weeks" else 1) * turns
    local = at.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(UTC)


def _live(layer: Layer, at: datetime) -> bool:
    return layer.start <= at and (layer.end is None or at < layer.end)


def _cyclic(people: list[str]) -> tuple[str, ...]:
    """A participant list up to rotation (the same cycle started elsewhere)."""
    if not people:
        return ()
    i = people.index(min(people))
    return tuple(people[i:] + people[:i])


def _eras(
    *, layers: list[Layer], index: int, unit: tuple[str, int], anchor: datetime, tz: ZoneInfo, precedence: bool
) -> list[EraPlan]:
    """The layer's definitions over time: what it covers once the layers above it have taken their part."""
    layer = layers[index]
    bounds = sorted(
        {layer.start} | {x.start for x in layers[index + 1 :]} | {x.end for x in layers[index:] if x.end is not None}
    )
    eras: list[EraPlan] = []
    if anchor < layer.start:
        eras.append(EraPlan(effective_from=anchor, participants=[], restrictions=[]))
    for at in bounds:
        if at < layer.start:
            continue
        mask: Mask = layer.mask if _live(layer, at) else []
        for upper in layers[index + 1 :] if precedence else []:
            if _live(upper, at):
                mask = mask_subtract(mask, upper.mask)
        users = layer.users
        if not mask or not users:
            era = EraPlan(effective_from=at, participants=[], restrictions=[])
        else:
            # The participant order starts with whoever the source has on this layer at `at`.
            lead = shift_index(unit=unit, anchor=anchor, at=at, tz=tz) % len(users)
            era = EraPlan(effective_from=at, participants=users[lead:] + users[:lead], restrictions=mask_windows(mask))
        if (
            eras
            and eras[-1].restrictions == era.restrictions
            and _cyclic(eras[-1].participants) == _cyclic(era.participants)
        ):
            continue  # nothing changes here
        eras.append(era)
    return eras


def layer_rotations(
    *,
    schedule_name: str,
    layers: list[Layer],
    tz: ZoneInfo,
    team_key: str,
    position: str,
    plan: Plan,
    what: str,
    precedence: bool = True,
) -> list[RotationPlan]:
    """One rotation per layer (layers lowest first); what cannot be expressed is named in plan.unmapped.

    precedence=False: the layers are all on call together (Opsgenie's rotations), as Backstop's rotations of
    one position are.
    """
    out = []
    for index, layer in enumerate(layers):
        label = f"{schedule_name} / {layer.name or f'{what} {index + 1}'}"
        if len(set(layer.users)) != len(layer.users):
            plan.unmapped.append(
                Unmapped(what, label, "a person is listed twice in the rotation; Backstop lists each person once")
            )
            continue
        unit = unit_of(layer.turn_seconds)
        if unit is None:
            plan.unmapped.append(Unmapped(what, label, "the turn length is not a whole number of hours"))
            continue
        if unit[1] > 1000:
            plan.unmapped.append(Unmapped(what, label, "the turn is longer than Backstop's 1000 units"))
            continue
        # The cycle repeats every len(users) turns; move the anchor back by whole cycles to the layer's start.
        anchor = layer.anchor
        while anchor > layer.start:
            anchor = _step(anchor, unit, -max(len(layer.users), 1), tz)
        local = anchor.astimezone(tz)
        if local.second or local.microsecond:
            plan.unmapped.append(Unmapped(what, label, "handoffs are kept to the minute in Backstop"))
            continue
        out.append(
            RotationPlan(
                external_id=f"{team_key}:{layer.external_id}",
                team_key=team_key,
                name=label[:100],
                position=position,
                time_zone=str(tz),
                start_date=local.date(),
                handoff_time=time(local.hour, local.minute),
                unit=unit[0],
                length=unit[1],
                eras=_eras(layers=layers, index=index, unit=unit, anchor=anchor, tz=tz, precedence=precedence),
            )
        )
    return out
