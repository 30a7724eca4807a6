"""The neutral import plan: what a vendor's configuration becomes in Backstop, before anything is written.

Pure data and pure helpers (no Django): every vendor mapper produces a Plan, apply.py writes it through
the services, compare.py checks the result against the vendor's own answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

WEEK_MINUTES = 7 * 24 * 60
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Unmapped:
    """A vendor feature Backstop cannot express as given: named in the report, never approximated silently."""

    kind: str
    name: str
    reason: str


@dataclass
class ContactPlan:
    external_id: str
    kind: str  # Backstop ContactMethod.Kind: sms, voice, email
    value: str
    label: str = ""


@dataclass
class RulePlan:
    external_id: str
    contact_external_id: str
    delay_minutes: int
    urgency: str  # any, high, low


@dataclass
class UserPlan:
    external_id: str
    email: str
    name: str
    time_zone: str = "UTC"
    contacts: list[ContactPlan] = field(default_factory=list)
    rules: list[RulePlan] = field(default_factory=list)


@dataclass
class TeamPlan:
    key: str
    name: str
    time_zone: str
    members: list[str] = field(default_factory=list)  # user external ids


@dataclass
class EraPlan:
    effective_from: datetime
    participants: list[str]  # user external ids, the first leads the shift running at effective_from
    restrictions: list[dict]  # Backstop windows {"weekday", "start", "end"} in the rotation's zone


@dataclass
class RotationPlan:
    external_id: str
    team_key: str
    name: str
    position: str
    time_zone: str
    start_date: date
    handoff_time: time
    unit: str
    length: int
    eras: list[EraPlan]  # the first takes effect at the anchor (start_date + handoff_time)


@dataclass
class OverridePlan:
    external_id: str
    rotation_external_ids: list[str]
    position: str
    user: str
    start: datetime
    end: datetime


@dataclass
class StepPlan:
    delay_minutes: int
    targets: list[tuple[str, str]]  # ("position", name) or ("user", external id)


@dataclass
class PolicyPlan:
    external_id: str
    team_key: str
    name: str
    repeat: int
    steps: list[StepPlan]


@dataclass
class IntegrationPlan:
    external_id: str
    team_key: str
    name: str
    kind: str
    policy_external_id: str | None


@dataclass
class SourceAnswer:
    """The vendor's own answer for one schedule: who is on call when (user external ids), over a window."""

    schedule_id: str
    name: str
    team_key: str
    position: str
    since: datetime
    until: datetime
    entries: list[tuple[datetime, datetime, str]]


@dataclass
class Plan:
    source: str
    users: list[UserPlan] = field(default_factory=list)
    teams: list[TeamPlan] = field(default_factory=list)
    rotations: list[RotationPlan] = field(default_factory=list)
    overrides: list[OverridePlan] = field(default_factory=list)
    policies: list[PolicyPlan] = field(default_factory=list)
    integrations: list[IntegrationPlan] = field(default_factory=list)
    answers: list[SourceAnswer] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)


# --------------------------------------------------------------------------- weekly masks
# A restriction is a set of minutes of the local week (Monday 00:00 = 0), as sorted disjoint [a, b) intervals.

Mask = list[tuple[int, int]]
FULL_WEEK: Mask = [(0, WEEK_MINUTES)]


def parse_time(value: str) -> datetime:
    """A vendor's ISO 8601 instant (a trailing Z included), in UTC; one without a zone is refused."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment.astimezone(UTC)


def mask_normalise(intervals: list[tuple[int, int]]) -> Mask:
    """Wrap intervals that run past Sunday midnight to the week's start, then merge."""
    pieces: list[tuple[int, int]] = []
    for a, b in intervals:
        if b - a >= WEEK_MINUTES:
            return list(FULL_WEEK)
        a %= WEEK_MINUTES
        b = a + (b - a)
        if b > WEEK_MINUTES:
            pieces += [(a, WEEK_MINUTES), (0, b - WEEK_MINUTES)]
        elif b > a:
            pieces.append((a, b))
    pieces.sort()
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def mask_subtract(mask: Mask, other: Mask) -> Mask:
    out: list[tuple[int, int]] = []
    for a, b in mask:
        cur = a
        for c, d in other:
            if d <= cur or c >= b:
                continue
            if c > cur:
                out.append((cur, c))
            cur = max(cur, d)
            if cur >= b:
                break
        if cur < b:
            out.append((cur, b))
    return out


def _hhmm(minutes: int) -> str:
    minutes %= DAY_MINUTES
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def mask_windows(mask: Mask) -> list[dict]:
    """Backstop restriction windows for a weekly mask ([] = the whole week, which Backstop reads as always).

    Backstop windows are at most a day long (a window whose end is before its start runs past midnight),
    so the mask is cut at each local midnight; a whole day is two windows, since start == end is refused.
    The resolver merges touching windows, so the cuts make no handoff.
    """
    if mask == FULL_WEEK:
        return []
    windows: list[dict] = []
    for a, b in mask:
        cur = a
        while cur < b:
            day = cur // DAY_MINUTES
            stop = min(b, (day + 1) * DAY_MINUTES)
            if cur == day * DAY_MINUTES and stop == (day + 1) * DAY_MINUTES:
                windows.append({"weekday": day, "start": "00:00", "end": "12:00"})
                windows.append({"weekday": day, "start": "12:00", "end": "00:00"})
            else:
                windows.append({"weekday": day, "start": _hhmm(cur), "end": _hhmm(stop)})
            cur = stop
    return windows


def plan_members_fill(plan: Plan, *, team_name: Callable[[RotationPlan], str] | None = None) -> None:
    """Give each team everyone its rotations, overrides and policy steps name. A rotation whose team no
    policy made gets a team of its own, named by `team_name` (default: the rotation's schedule part)."""
    by_key = {t.key: t for t in plan.teams}
    for rotation in plan.rotations:
        team = by_key.get(rotation.team_key)
        if team is None:
            name = team_name(rotation) if team_name else rotation.name.split(" / ")[0]
            team = by_key[rotation.team_key] = TeamPlan(key=rotation.team_key, name=name, time_zone=rotation.time_zone)
            plan.teams.append(team)
        if team.time_zone == "UTC":
            team.time_zone = rotation.time_zone
        for era in rotation.eras:
            team.members += [u for u in era.participants if u not in team.members]
    for override in plan.overrides:
        team = by_key[override.external_id.rsplit(":", 1)[0]]
        if override.user not in team.members:
            team.members.append(override.user)
    for policy in plan.policies:
        team = by_key[policy.team_key]
        for step in policy.steps:
            team.members += [ref for kind, ref in step.targets if kind == "user" and ref not in team.members]
