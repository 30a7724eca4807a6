"""Proof that an import is right: who is on call, minute by minute, the vendor's answer against Backstop's.

Interval arithmetic, not 80,640 single-minute questions: both answers become per-person interval lists,
the union of their boundaries cuts the window into pieces on which both answers are constant, and a
piece where the two sets of people differ counts its minutes as disagreeing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from portal.importers.plan import Plan, SourceAnswer
from portal.models import ImportedObject, User
from rotations.models import Team
from rotations.selectors import team_shifts_get

_MINUTE = timedelta(minutes=1)


@dataclass
class Disagreement:
    start: datetime
    end: datetime
    source: list[str]  # e-mail addresses
    backstop: list[str]


@dataclass
class ScheduleComparison:
    name: str
    team: str
    position: str
    since: datetime
    until: datetime
    minutes: int
    disagreeing_minutes: int
    disagreements: list[Disagreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why, where the cause is known


Entries = list[tuple[datetime, datetime, str]]


def answers_compare(*, source: Entries, backstop: Entries, since: datetime, until: datetime) -> list[Disagreement]:
    """Pieces of [since, until) where the two answers name different people (labels are opaque strings)."""
    cuts = {since, until}
    for start, end, _ in source + backstop:
        for moment in (start, end):
            if since < moment < until:
                cuts.add(moment)
    ordered = sorted(cuts)
    out: list[Disagreement] = []
    for a, b in zip(ordered, ordered[1:], strict=False):
        left = sorted({who for s, e, who in source if s <= a and e >= b})
        right = sorted({who for s, e, who in backstop if s <= a and e >= b})
        if left != right:
            if out and out[-1].end == a and out[-1].source == left and out[-1].backstop == right:
                out[-1].end = b
            else:
                out.append(Disagreement(a, b, left, right))
    return out


def _minutes(span: timedelta) -> int:
    return -(-span // _MINUTE)  # a part of a minute counts as a disagreeing minute


def answer_compare(*, plan: Plan, answer: SourceAnswer) -> ScheduleComparison:
    rows = ImportedObject.objects.filter(source=plan.source)
    users = {r.external_id: r.object_id for r in rows.filter(kind="user")}
    team_row = rows.filter(kind="team", external_id=answer.team_key).first()
    emails = dict(User.objects.filter(pk__in=users.values()).values_list("pk", "email"))
    source = [(s, e, emails.get(users.get(who, -1), f"({who}, not imported)")) for s, e, who in answer.entries]
    backstop: Entries = []
    team_name = "(not created)"
    if team_row is not None:
        team = Team.objects.get(pk=team_row.object_id)
        team_name = team.name
        for shift in team_shifts_get(team=team, since=answer.since, until=answer.until):
            if shift.position == answer.position and shift.user_id is not None:
                backstop.append((shift.start, shift.end, emails.get(shift.user_id) or str(shift.user_id)))
    found = answers_compare(source=source, backstop=backstop, since=answer.since, until=answer.until)
    notes = []
    for override in plan.overrides:
        if not override.external_id.startswith(f"{answer.team_key}:"):
            continue
        for d in found:
            if not d.backstop and d.start < override.end and d.end > override.start:
                notes.append(
                    f"The override {override.start:%Y-%m-%d %H:%M}–{override.end:%Y-%m-%d %H:%M} UTC falls where no "
                    "rotation of the schedule is on: a Backstop override only replaces a scheduled shift, so that time "
                    "has nobody on call. Extend a rotation over it, or add the cover by hand."
                )
                break
    return ScheduleComparison(
        notes=notes,
        name=answer.name,
        team=team_name,
        position=answer.position,
        since=answer.since,
        until=answer.until,
        minutes=_minutes(answer.until - answer.since),
        disagreeing_minutes=sum(_minutes(d.end - d.start) for d in found),
        disagreements=found,
    )


def plan_compare(*, plan: Plan) -> list[ScheduleComparison]:
    return [answer_compare(plan=plan, answer=answer) for answer in plan.answers]
