"""Coverage gaps (alerted to team managers once per gap) and the fairness report."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from portal.models import User
from rotations import schedule
from rotations._common import holds_of, insert_ignore, local
from rotations.models import GapAlert, Membership, NotificationPreference, Team
from rotations.notify import handover_message_send
from rotations.selectors import TeamRoster, rotation_specs_for_teams

# Gaps are looked up with this much margin either side so a gap straddling "now" or the end of the
# look-ahead keeps its real start/end (and so its GapAlert identity) from one run to the next.
MARGIN = timedelta(days=7)


def _problems(ts: TeamRoster, since: datetime, until: datetime) -> list[GapAlert]:
    lo, hi = since - MARGIN, until + MARGIN
    found: list[GapAlert] = []
    for position, start, end in schedule.coverage_gaps(ts.specs, ts.exclusions, ts.overrides, lo, hi):
        if end > since and start < until:
            found.append(GapAlert(team_id=ts.team_id, position=position, start=start, end=end, kind=GapAlert.Kind.GAP))
    # The resolver routes around exclusions, but an override can still put someone on call while away.
    by_user = defaultdict(list)
    for x in ts.exclusions:
        by_user[x.user_id].append(x)
    shifts = schedule.team_shifts(ts.specs, ts.exclusions, ts.overrides, lo, hi)
    for hold in holds_of(shifts):
        for x in by_user.get(hold.user_id, ()):
            start, end = max(hold.start, x.start), min(hold.end, x.end)
            if start < end and end > since and start < until:
                found.append(
                    GapAlert(
                        team_id=ts.team_id,
                        position=hold.position,
                        start=start,
                        end=end,
                        kind=GapAlert.Kind.EXCLUDED,
                        user_id=hold.user_id,
                    )
                )
    return found


def _describe(alert: GapAlert, tz: str, names: dict[int, str]) -> str:
    when = f"{local(alert.start, tz)} – {local(alert.end, tz)}"
    if alert.kind == GapAlert.Kind.GAP:
        return f"- nobody is {alert.position}: {when}"
    return f"- {names.get(alert.user_id, '?')} is {alert.position} during their own exclusion: {when}"


def gaps_check_team(*, team: Team, now: datetime, days: int | None = None) -> list[GapAlert]:
    """Alert the team's managers about new coverage problems in the next `days`; returns the new alerts.

    Call after every roster change; each (position, window, kind, person) is alerted once (GapAlert is
    unique), however often this runs and however many beats run it.
    """
    days = settings.BACKSTOP_GAP_LOOKAHEAD_DAYS if days is None else days
    until = now + timedelta(days=days)
    ts = rotation_specs_for_teams(team_ids=[team.pk], since=now - MARGIN, until=until + MARGIN).teams.get(team.pk)
    if ts is None:
        return []
    new: list[GapAlert] = []
    with transaction.atomic():
        for alert in _problems(ts, now, until):
            alert.created_at = now
            if insert_ignore(alert) is not None:
                new.append(alert)
    if not new:
        return new
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in={a.user_id for a in new if a.user_id})}
    managers = User.objects.filter(
        memberships__team=team, memberships__role=Membership.Role.MANAGER, is_active=True
    ).order_by("pk")
    prefs = {p.user_id: p for p in NotificationPreference.objects.filter(user__in=managers)}
    for manager in managers:
        # Gap alerts follow the manager's roster-change channels (both are "the schedule changed").
        pref = prefs.get(manager.pk)
        kinds = pref.roster_change_kinds if pref is not None and pref.roster_change_kinds else ["email"]
        lines = [f"Coverage problems in {team.name}'s on-call schedule:"]
        lines += [_describe(a, manager.time_zone, names) for a in new]
        lines += ["", "Add an override or change the rotation to cover them."]
        handover_message_send(user=manager, subject=f"On-call gaps in {team.name}", body="\n".join(lines), kinds=kinds)
    GapAlert.objects.filter(pk__in=[a.pk for a in new]).update(
        message="\n".join(_describe(a, team.time_zone, names) for a in new)
    )
    return new


@dataclass(frozen=True)
class RosterProblem:
    """An open coverage problem, with what a manager needs to fix it."""

    kind: str  # GapAlert.Kind
    position: str
    start: datetime
    end: datetime
    user_id: int | None
    rotation_id: int | None  # the rotation to override or edit
    exclusion_id: int | None  # EXCLUDED: the time off it overlaps
    alerted_at: datetime | None  # when the managers were told (None: not yet)


PROBLEMS_SHOWN = 100


def roster_problems_get(*, team: Team, now: datetime, days: int | None = None) -> list[RosterProblem]:
    """The team's coverage problems in [now, now + days) as they stand now (fixed ones are gone).

    Same detection as gaps_check_team; reads only. At most PROBLEMS_SHOWN, soonest first.
    """
    days = settings.BACKSTOP_GAP_LOOKAHEAD_DAYS if days is None else days
    until = now + timedelta(days=days)
    ts = rotation_specs_for_teams(team_ids=[team.pk], since=now - MARGIN, until=until + MARGIN).teams.get(team.pk)
    if ts is None:
        return []
    found = sorted(_problems(ts, now, until), key=lambda a: (a.start, a.position, a.kind))[:PROBLEMS_SHOWN]
    alerted = {
        (a.kind, a.position, a.start, a.end, a.user_id): a.created_at
        for a in GapAlert.objects.filter(team=team, end__gt=now, start__lt=until).order_by("start")[:1000]
    }
    shifts = holds_of(schedule.team_shifts(ts.specs, ts.exclusions, ts.overrides, now - MARGIN, until + MARGIN))
    out = []
    for a in found:
        if a.kind == GapAlert.Kind.GAP:
            rotation_id = next((s.id for s in ts.specs if a.position in s.positions), None)
            exclusion_id = None
        else:
            rotation_id = next(
                (
                    h.rotation_id
                    for h in shifts
                    if h.user_id == a.user_id and h.position == a.position and h.start < a.end and h.end > a.start
                ),
                None,
            )
            exclusion_id = next(
                (x.id for x in ts.exclusions if x.user_id == a.user_id and x.start < a.end and x.end > a.start), None
            )
        out.append(
            RosterProblem(
                kind=a.kind,
                position=a.position,
                start=a.start,
                end=a.end,
                user_id=a.user_id,
                rotation_id=rotation_id,
                exclusion_id=exclusion_id,
                alerted_at=alerted.get((a.kind, a.position, a.start, a.end, a.user_id)),
            )
        )
    return out


def gaps_check(*, now: datetime, days: int | None = None) -> int:
    """gaps_check_team for every team that has a rotation; returns the number of new alerts."""
    count = 0
    for team in Team.objects.filter(rotations__isnull=False).distinct().order_by("pk"):
        count += len(gaps_check_team(team=team, now=now, days=days))
    return count


# --------------------------------------------------------------------------
# Fairness
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FairnessRow:
    user_id: int
    name: str
    position: str
    past_shifts: int
    past_hours: float
    upcoming_shifts: int
    upcoming_hours: float


def fairness_report(*, team: Team, now: datetime, days: int = 90) -> list[FairnessRow]:
    """Per person and position: shifts and hours on call in [now-days, now) and [now, now+days).

    A shift is a continuous hold of a position (back-to-back segments of the same person merged);
    one running at `now` counts in both windows, its hours split at `now`.
    """
    since, until = now - timedelta(days=days), now + timedelta(days=days)
    ts = rotation_specs_for_teams(team_ids=[team.pk], since=since, until=until).teams.get(team.pk)
    if ts is None:
        return []
    stats: dict[tuple[int, str], list[float]] = {}
    position_order: dict[str, int] = {}
    for spec in ts.specs:
        for position in spec.positions:
            position_order.setdefault(position, len(position_order))
        for era in spec.eras:
            for user_id in era.participants:
                for position in spec.positions:
                    stats.setdefault((user_id, position), [0, 0.0, 0, 0.0])
    shifts = schedule.team_shifts(ts.specs, ts.exclusions, ts.overrides, since, until)
    for hold in holds_of(shifts):
        if hold.user_id is None:
            continue
        row = stats.setdefault((hold.user_id, hold.position), [0, 0.0, 0, 0.0])
        if hold.start < now:
            row[0] += 1
            row[1] += (min(hold.end, now) - hold.start).total_seconds() / 3600
        if hold.end > now:
            row[2] += 1
            row[3] += (hold.end - max(hold.start, now)).total_seconds() / 3600
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in={k[0] for k in stats})}
    rows = [
        FairnessRow(
            user_id=u,
            name=names.get(u, "?"),
            position=p,
            past_shifts=int(v[0]),
            past_hours=round(v[1], 2),
            upcoming_shifts=int(v[2]),
            upcoming_hours=round(v[3], 2),
        )
        for (u, p), v in stats.items()
    ]
    rows.sort(key=lambda r: (position_order.get(r.position, 99), r.name.lower(), r.user_id))
    return rows
