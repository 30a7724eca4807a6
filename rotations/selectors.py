"""Roster reads: load plain resolver specs from the ORM, then ask `rotations.schedule`.

Every loader issues a fixed number of queries whatever the number of teams (rotations, eras,
participants, exclusions, overrides: five), using `values_list` rather than model instances
because the "Now" page resolves a thousand teams per request.

On-call questions ("who holds primary at t, and until when?") need the exclusions and overrides
of the whole shift containing t, not just those touching t, or the "until" would be wrong. So the
loaders first compute each rotation's plain shift around the window edges (no DB needed) and then
fetch exclusions/overrides for that widened window. The same widening makes iCal segments
unclipped, so their UIDs do not depend on the feed window.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import F, FloatField, Func
from django.db.models.expressions import RawSQL

from rotations import schedule
from rotations.models import Exclusion, Membership, Override, Rotation, RotationEra, RotationParticipant, Team
from rotations.schedule import Reason, RotationSpec, Shift

_ONE_US = timedelta(microseconds=1)
_fromtimestamp = datetime.fromtimestamp
_exclusion_make = schedule.exclusion_make
_override_make = schedule.override_make


class _Epoch(Func):
    """Seconds since the epoch as float8: loading 10k floats is ~10x cheaper than 10k timestamptz.

    A double holds microseconds exactly for dates in this millennium, so nothing is lost.
    """

    template = "date_part('epoch', %(expressions)s)"
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # The local demo: SQLite stores "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC. Whole seconds from
        # julianday (exact to the millisecond, so rounding is safe) plus the fraction as written:
        # microseconds survive as they do on PostgreSQL.
        template = (
            "(ROUND((julianday(substr(%(expressions)s, 1, 19)) - 2440587.5) * 86400.0)"
            " + CAST('0' || substr(%(expressions)s, 20) AS REAL))"
        )
        return super().as_sql(compiler, connection, template=template, **extra_context)


def _epoch(field: str) -> Func:
    return _Epoch(F(field))


class _IdArray(RawSQL):
    """`IN (SELECT unnest(%s))` with ONE array parameter: a 1,000-item IN list costs more to bind.

    The array goes as its text literal: psycopg dumping a list of ints checks every element (with a
    regex), ~8 ms for the 4,000 user ids of a thousand teams.
    """

    def __init__(self, values: Iterable[int]) -> None:
        self.ids = [int(v) for v in values]
        super().__init__("SELECT unnest(%s::bigint[])", ["{" + ",".join(map(str, self.ids)) + "}"])

    def as_sqlite(self, compiler, connection, **extra_context):
        # The local demo on SQLite has no arrays: one JSON parameter does the same job.
        return "SELECT value FROM json_each(%s)", [json.dumps(self.ids)]


def _ids(values: Iterable[int]) -> RawSQL:
    return _IdArray(values)


def _tuples(queryset) -> list[tuple]:
    """The rows of a `values_list` queryset exactly as the driver returns them.

    Skips Django's per-row converters, which cost more than the query itself for the ~10k
    exclusion/override rows of a thousand teams. Only for columns the driver already returns as
    the wanted Python type (ints, text, float8 from `_epoch`), not JSON or timestamps.
    """
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass(frozen=True, slots=True)
class TeamRoster:
    """What the resolver needs for one team."""

    team_id: int
    specs: tuple[RotationSpec, ...] = ()
    exclusions: tuple[schedule.Exclusion, ...] = ()
    overrides: tuple[schedule.Override, ...] = ()

    def spec(self, rotation_id: int) -> RotationSpec:
        return next(s for s in self.specs if s.id == rotation_id)


@dataclass(slots=True)
class RosterData:
    """Specs, exclusions and overrides per team, plus what callers need to label shifts."""

    teams: dict[int, TeamRoster] = field(default_factory=dict)
    # (rotation id, era index in spec.eras) -> RotationEra.pk: stable ids for iCal UIDs.
    era_ids: dict[tuple[int, int], int] = field(default_factory=dict)
    rotation_names: dict[int, str] = field(default_factory=dict)
    rotation_team: dict[int, int] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None

    def team(self, team_id: int) -> TeamRoster:
        return self.teams.get(team_id) or TeamRoster(team_id=team_id)


@dataclass(frozen=True, slots=True)
class OncallRow:
    """One position holder (or gap) of a team, ready to display or serialise."""

    team_id: int
    position: str
    rotation_id: int
    rotation_name: str
    user: object | None  # portal.User
    start: datetime
    until: datetime
    reason: str
    scheduled_user: object | None  # who the rotation had planned (the person covered)
    override_id: int | None
    exclusion_id: int | None
    note: str = ""  # "covering for Ann (vacation: Lisbon)", "override: dentist", "Nobody holds this position"
    team_name: str = ""  # two teams' rotations are often both called "Weekly"

    @property
    def covering(self):
        """The person this holder stands in for, if any."""
        if (
            self.reason in (Reason.COVER, Reason.OVERRIDE)
            and self.scheduled_user is not None
            and (self.user is None or self.scheduled_user.pk != self.user.pk)
        ):
            return self.scheduled_user
        return None


def _window(raw: dict) -> schedule.Window:
    return schedule.Window(
        start=time.fromisoformat(raw["start"]),
        end=time.fromisoformat(raw["end"]),
        weekday=raw.get("weekday"),
    )


def era_anchor(*, start_date, handoff_time: time, time_zone: str) -> datetime:
    """The first handoff: start_date at handoff_time, wall clock in the rotation's zone."""
    return datetime.combine(start_date, handoff_time, tzinfo=ZoneInfo(time_zone))


def _specs_load(team_ids: Iterable[int]) -> tuple[RosterData, dict[int, list[RotationSpec]], set[int]]:
    team_ids = list(team_ids)
    data = RosterData()
    rotations = list(
        Rotation.objects.filter(team_id__in=_ids(team_ids))
        .order_by("team_id", "name", "pk")
        .values_list("pk", "team_id", "name", "time_zone", "positions")
    )
    rotation_ids = [r[0] for r in rotations]
    eras_by_rotation: dict[int, list[tuple]] = defaultdict(list)
    era_rows = (
        RotationEra.objects.filter(rotation_id__in=_ids(rotation_ids))
        .order_by("rotation_id", "effective_from")
        .values_list(
            "pk",
            "rotation_id",
            "effective_from",
            "start_date",
            "handoff_time",
            "shift_unit",
            "shift_length",
            "restrictions",
            "cycle_offset",
        )
    )
    for row in era_rows:
        eras_by_rotation[row[1]].append(row)
    participants: dict[int, list[int]] = defaultdict(list)
    for era_id, user_id in (
        RotationParticipant.objects.filter(era__rotation_id__in=_ids(rotation_ids))
        .order_by("era_id", "order")
        .values_list("era_id", "user_id")
    ):
        participants[era_id].append(user_id)

    specs_by_team: dict[int, list[RotationSpec]] = defaultdict(list)
    users: set[int] = set()
    for pk, team_id, name, tz, positions in rotations:
        rows = eras_by_rotation.get(pk, ())
        # The same rows give the same spec: reusing the very object lets the resolver find its
        # compiled form (and memos) by identity instead of hashing and comparing a new spec.
        key = (
            pk,
            team_id,
            tz,
            tuple(positions),
            tuple((row[2], row[3], row[4], row[5], row[6], repr(row[7]) if row[7] else "", row[8]) for row in rows),
            tuple(tuple(participants.get(row[0], ())) for row in rows),
        )
        spec = _spec_memo.get(key)
        if spec is None:
            spec = _spec_build(pk, team_id, tz, positions, rows, participants)
            if len(_spec_memo) >= _SPEC_MEMO_LIMIT:
                _spec_memo.clear()
            _spec_memo[key] = spec
        for index, row in enumerate(rows):
            data.era_ids[(pk, index)] = row[0]
        for era in spec.eras:
            users.update(era.participants)
        data.rotation_names[pk] = name
        data.rotation_team[pk] = team_id
        specs_by_team[team_id].append(spec)
    return data, specs_by_team, users


_SPEC_MEMO_LIMIT = 20_000
_spec_memo: dict[tuple, RotationSpec] = {}


def _spec_build(pk: int, team_id: int, tz: str, positions, rows, participants) -> RotationSpec:
    eras = []
    for era_id, _rid, eff, start_date, handoff, unit, length, restrictions, offset in rows:
        eras.append(
            schedule.Era(
                effective_from=eff,
                anchor=era_anchor(start_date=start_date, handoff_time=handoff, time_zone=tz),
                unit=unit,
                length=length,
                participants=tuple(participants.get(era_id, ())),
                restrictions=tuple(_window(w) for w in restrictions or ()),
                offset=offset,
            )
        )
    return RotationSpec(id=pk, team_id=team_id, time_zone=tz, positions=tuple(positions), eras=tuple(eras))


def _widen(specs: Iterable[RotationSpec], since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """Extend [since, until) to the plain shifts straddling its edges (pure, no queries)."""
    lo, hi = since, until
    last = until - _ONE_US
    for spec in specs:
        first = schedule.oncall_at(spec, (), (), since)
        for sh in first:
            lo = min(lo, sh.start)
        # An instant (on-call questions): the shift around `since` is also the one around `last`.
        for sh in first if last == since else schedule.oncall_at(spec, (), (), last):
            hi = max(hi, sh.end)
    return lo, hi


def rotation_spec_get(*, rotation: Rotation) -> RotationSpec:
    """The resolver's view of one rotation as stored now (uncached: for services about to change it)."""
    rows = list(
        RotationEra.objects.filter(rotation=rotation)
        .order_by("effective_from")
        .values_list(
            "pk",
            "rotation_id",
            "effective_from",
            "start_date",
            "handoff_time",
            "shift_unit",
            "shift_length",
            "restrictions",
            "cycle_offset",
        )
    )
    participants: dict[int, list[int]] = defaultdict(list)
    for era_id, user_id in (
        RotationParticipant.objects.filter(era__rotation=rotation)
        .order_by("era_id", "order")
        .values_list("era_id", "user_id")
    ):
        participants[era_id].append(user_id)
    return _spec_build(rotation.pk, rotation.team_id, rotation.time_zone, rotation.positions, rows, participants)


def _roster_load(team_ids: Iterable[int], since: datetime, until: datetime, *, widen: bool) -> RosterData:
    data, specs_by_team, users = _specs_load(team_ids)
    if widen:
        since, until = _widen((s for specs in specs_by_team.values() for s in specs), since, until)
    data.since, data.until = since, until
    rotation_ids = list(data.rotation_team)

    overrides_by_team: dict[int, list[schedule.Override]] = defaultdict(list)
    # Override takers' own exclusions too: the resolver ignores them (an override names a person
    # regardless), but the gap check warns about someone put on call while away.
    override_users: dict[int, set[int]] = defaultdict(set)
    if rotation_ids:
        for pk, rotation_id, user_id, start, end, position, replaces in _tuples(
            Override.objects.filter(rotation_id__in=_ids(rotation_ids), start__lt=until, end__gt=since)
            .order_by("start", "pk")
            .values_list("pk", "rotation_id", "user_id", _epoch("start"), _epoch("end"), "position", "replaces_user_id")
        ):
            override_users[data.rotation_team[rotation_id]].add(user_id)
            overrides_by_team[data.rotation_team[rotation_id]].append(
                _override_make(
                    rotation_id,
                    user_id,
                    _fromtimestamp(start, UTC),
                    _fromtimestamp(end, UTC),
                    position or None,
                    replaces,
                    pk,
                )
            )

    exclusions_by_user: dict[int, list[schedule.Exclusion]] = defaultdict(list)
    users = users.union(*override_users.values())
    if users:
        for pk, user_id, start, end, reason in _tuples(
            Exclusion.objects.filter(user_id__in=_ids(users), start__lt=until, end__gt=since)
            .order_by("start", "pk")
            .values_list("pk", "user_id", _epoch("start"), _epoch("end"), "reason")
        ):
            exclusions_by_user[user_id].append(
                _exclusion_make(user_id, _fromtimestamp(start, UTC), _fromtimestamp(end, UTC), pk, reason)
            )

    for team_id, specs in specs_by_team.items():
        team_users = {u for spec in specs for era in spec.eras for u in era.participants}
        team_users |= override_users.get(team_id, set())
        exclusions = [x for u in team_users for x in exclusions_by_user.get(u, ())]
        data.teams[team_id] = TeamRoster(
            team_id=team_id,
            specs=tuple(specs),
            exclusions=tuple(exclusions),
            overrides=tuple(overrides_by_team.get(team_id, ())),
        )
    return data


def rotation_specs_for_teams(*, team_ids: Iterable[int], since: datetime, until: datetime) -> RosterData:
    """Specs of the teams' rotations with the exclusions/overrides overlapping [since, until).

    Five queries whatever the number of teams.
    """
    return _roster_load(team_ids, since, until, widen=False)


def teams_oncall_get(*, team_ids: Iterable[int], at: datetime) -> dict[int, dict[str, list[Shift]]]:
    """team id -> position name -> segments covering `at` (gaps included, user_id None). Five queries."""
    team_ids = list(team_ids)
    data = _roster_load(team_ids, at, at + _ONE_US, widen=True)
    out: dict[int, dict[str, list[Shift]]] = {}
    for team_id in team_ids:
        roster = data.team(team_id)
        out[team_id] = schedule.team_oncall_at(roster.specs, roster.exclusions, roster.overrides, at)
    return out


def _team_id(team: Team | int) -> int:
    return team if isinstance(team, int) else team.pk


def team_oncall_get(*, team: Team | int, at: datetime) -> dict[str, list[Shift]]:
    """Position name -> segments covering `at` (gaps included: user_id None)."""
    team_id = _team_id(team)
    return teams_oncall_get(team_ids=[team_id], at=at)[team_id]


def team_oncall_users(*, team: Team | int, position: str, at: datetime) -> list:
    """The people holding `position` at `at`, in rotation order, without duplicates."""
    ids: list[int] = []
    for sh in team_oncall_get(team=team, at=at).get(position, ()):
        if sh.user_id is not None and sh.user_id not in ids:
            ids.append(sh.user_id)
    if not ids:
        return []
    users = get_user_model().objects.in_bulk(ids)
    return [users[i] for i in ids if i in users]


def team_shifts_get(*, team: Team | int, since: datetime, until: datetime, unclipped: bool = False) -> list[Shift]:
    """The team's segments in [since, until), gaps included.

    unclipped=True returns whole segments overlapping the window (edges not cut at since/until).
    """
    team_id = _team_id(team)
    return teams_shifts_get(team_ids=[team_id], since=since, until=until, unclipped=unclipped)[1]


def teams_shifts_get(
    *, team_ids: Iterable[int], since: datetime, until: datetime, unclipped: bool = False
) -> tuple[RosterData, list[Shift]]:
    """(the loaded roster, all segments of the teams overlapping [since, until))."""
    data = _roster_load(team_ids, since, until, widen=unclipped)
    shifts: list[Shift] = []
    for roster in data.teams.values():
        shifts.extend(schedule.team_shifts(roster.specs, roster.exclusions, roster.overrides, data.since, data.until))
    if unclipped:
        shifts = [sh for sh in shifts if sh.start < until and sh.end > since]
    shifts.sort(key=lambda sh: (sh.start, sh.position_index, sh.rotation_id))
    return data, shifts


def user_rotation_team_ids(*, user, since: datetime, until: datetime) -> set[int]:
    """Teams with a rotation the user is (or was) in, or takes an override of in the window.

    A UNION of two indexed lookups: the OR across both joins made PostgreSQL scan every rotation.
    Neither part may carry its model's default ordering: SQLite refuses ORDER BY inside a compound
    statement, and the result is a set anyway.
    """
    participating = (
        Rotation.objects.filter(eras__participant_links__user=user).order_by().values_list("team_id", flat=True)
    )
    overriding = (
        Override.objects.filter(user=user, start__lt=until, end__gt=since)
        .order_by()
        .values_list("rotation__team_id", flat=True)
    )
    return set(participating.union(overriding))


def user_shifts_get(
    *, user, since: datetime, until: datetime, team_ids: set[int] | None = None, unclipped: bool = False
) -> list[Shift]:
    """The user's segments in [since, until) across every rotation (optionally only `team_ids`)."""
    return user_shifts_with_roster_get(user=user, since=since, until=until, team_ids=team_ids, unclipped=unclipped)[1]


def user_shifts_with_roster_get(
    *, user, since: datetime, until: datetime, team_ids: set[int] | None = None, unclipped: bool = False
) -> tuple[RosterData, list[Shift]]:
    teams = user_rotation_team_ids(user=user, since=since, until=until)
    if team_ids is not None:
        teams &= set(team_ids)
    data, shifts = teams_shifts_get(team_ids=teams, since=since, until=until, unclipped=unclipped)
    return data, [sh for sh in shifts if sh.user_id == user.pk]


def team_gaps_get(*, team: Team | int, since: datetime, until: datetime) -> list[tuple[str, datetime, datetime]]:
    """(position, start, end) windows in [since, until) where nobody holds a position of the team."""
    team_id = _team_id(team)
    roster = _roster_load([team_id], since, until, widen=False).team(team_id)
    return schedule.coverage_gaps(roster.specs, roster.exclusions, roster.overrides, since, until)


def _exclusion_word(kind: str, reason: str) -> str:
    word = Exclusion.Kind(kind).label.lower() if kind in Exclusion.Kind.values else kind
    return f"{word}: {reason}" if reason else word


def _shift_note(sh: Shift, user, scheduled, exclusions: dict[int, tuple], overrides: dict[int, str]) -> str:
    """Why this person holds the position, in words."""
    reason = str(sh.reason)
    stand_in_for = scheduled if scheduled is not None and (user is None or scheduled.pk != user.pk) else None
    if reason == Reason.GAP:
        note = "Nobody holds this position"
        if stand_in_for is not None and sh.exclusion_id in exclusions:
            note += f" ({stand_in_for.display_name} is away: {_exclusion_word(*exclusions[sh.exclusion_id])})"
        return note
    if stand_in_for is not None:
        why = ""
        if sh.exclusion_id in exclusions:
            why = _exclusion_word(*exclusions[sh.exclusion_id])
        elif overrides.get(sh.override_id):
            why = overrides[sh.override_id]
        elif reason == Reason.OVERRIDE:
            why = "override"
        return f"covering for {stand_in_for.display_name}" + (f" ({why})" if why else "")
    if reason == Reason.OVERRIDE:
        return "override" + (f": {overrides[sh.override_id]}" if overrides.get(sh.override_id) else "")
    return ""


def shift_rows_describe(*, shifts: Iterable[Shift], data: RosterData, team_names: bool = False) -> list[OncallRow]:
    """Resolver shifts as display rows (people, notes, rotation and optionally team names).

    The one adapter from shifts to what the portal and the API show. At most three queries whatever
    the number of shifts (users, then the exclusions and overrides named), four with team_names.
    """
    shifts = list(shifts)
    user_ids = {u for sh in shifts for u in (sh.user_id, sh.scheduled_user_id) if u is not None}
    exclusion_ids = {sh.exclusion_id for sh in shifts if sh.exclusion_id}
    override_ids = {sh.override_id for sh in shifts if sh.override_id}
    users = get_user_model().objects.in_bulk(user_ids) if user_ids else {}
    exclusions = (
        {
            pk: (kind, reason)
            for pk, kind, reason in Exclusion.objects.filter(pk__in=exclusion_ids).values_list("pk", "kind", "reason")
        }
        if exclusion_ids
        else {}
    )
    overrides = dict(Override.objects.filter(pk__in=override_ids).values_list("pk", "reason")) if override_ids else {}
    names: dict[int, str] = {}
    if team_names and shifts:
        team_ids = {data.rotation_team[sh.rotation_id] for sh in shifts}
        names = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    rows = []
    for sh in shifts:
        user = users.get(sh.user_id) if sh.user_id is not None else None
        scheduled = users.get(sh.scheduled_user_id) if sh.scheduled_user_id is not None else None
        team_id = data.rotation_team[sh.rotation_id]
        rows.append(
            OncallRow(
                team_id=team_id,
                position=sh.position,
                rotation_id=sh.rotation_id,
                rotation_name=data.rotation_names[sh.rotation_id],
                user=user,
                start=sh.start,
                until=sh.end,
                reason=str(sh.reason),
                scheduled_user=scheduled,
                override_id=sh.override_id,
                exclusion_id=sh.exclusion_id,
                note=_shift_note(sh, user, scheduled, exclusions, overrides),
                team_name=names.get(team_id, ""),
            )
        )
    return rows


def teams_oncall_rows_get(*, team_ids: Iterable[int], at: datetime) -> dict[int, list[OncallRow]]:
    """team id -> display rows of who holds each position at `at` (gaps included).

    For the "Now" and team pages and the on-call API: at most eight queries whatever the number of
    teams (the roster's five, then users, exclusions and overrides named).
    """
    team_ids = list(team_ids)
    data = _roster_load(team_ids, at, at + _ONE_US, widen=True)
    shifts: list[Shift] = []
    for team_id in team_ids:
        roster = data.team(team_id)
        for lst in schedule.team_oncall_at(roster.specs, roster.exclusions, roster.overrides, at).values():
            shifts.extend(lst)
    out: dict[int, list[OncallRow]] = {team_id: [] for team_id in team_ids}
    for row in shift_rows_describe(shifts=shifts, data=data):
        out[row.team_id].append(row)
    return out


def user_shift_rows_get(*, user, since: datetime, until: datetime) -> list[OncallRow]:
    """The user's shifts in [since, until) as display rows, with team names (one query when in no rotation)."""
    teams = user_rotation_team_ids(user=user, since=since, until=until)
    if not teams:
        return []
    data, shifts = teams_shifts_get(team_ids=teams, since=since, until=until)
    return shift_rows_describe(shifts=[sh for sh in shifts if sh.user_id == user.pk], data=data, team_names=True)


def team_shift_rows_get(*, team: Team | int, since: datetime, until: datetime) -> list[OncallRow]:
    """The team's segments in [since, until) (gaps included) as display rows: the roster calendar."""
    data, shifts = teams_shifts_get(team_ids=[_team_id(team)], since=since, until=until)
    return shift_rows_describe(shifts=shifts, data=data)


def team_members_get(*, team: Team) -> list[Membership]:
    return list(Membership.objects.filter(team=team).select_related("user").order_by("role", "user__full_name"))


# ------------------------------------------------------------------------- unsaved drafts


@dataclass(frozen=True)
class RotationDraft:
    """A rotation definition as posted, not saved: what the preview resolves."""

    time_zone: str
    positions: tuple[str, ...]
    start_date: date
    handoff_time: time
    shift_unit: str
    shift_length: int
    participants: tuple[int, ...]
    restrictions: tuple[dict, ...] = ()  # already through validate_windows
    effective_from: datetime | None = None  # edits: when the new definition starts


@dataclass(frozen=True)
class DraftPreview:
    shifts: list[Shift]
    gaps: list[tuple[str, datetime, datetime]]


def rotation_draft_preview_get(
    *, team: Team, rotation: Rotation | None, draft: RotationDraft, since: datetime, until: datetime
) -> DraftPreview:
    """The shifts and gaps in [since, until) if `draft` were saved (as a new rotation, or as a new
    definition of `rotation` from draft.effective_from). Reads exclusions and overrides; writes nothing."""
    anchor = era_anchor(start_date=draft.start_date, handoff_time=draft.handoff_time, time_zone=draft.time_zone)
    new_era = schedule.Era(
        effective_from=anchor if rotation is None else (draft.effective_from or anchor),
        anchor=anchor,
        unit=draft.shift_unit,
        length=draft.shift_length,
        participants=tuple(draft.participants),
        restrictions=tuple(_window(w) for w in draft.restrictions),
    )
    if rotation is None:
        spec = RotationSpec(
            id=0, team_id=team.pk, time_zone=draft.time_zone, positions=tuple(draft.positions), eras=(new_era,)
        )
    else:
        stored = rotation_spec_get(rotation=rotation)
        at = new_era.effective_from
        before = [e for e in stored.eras if e.effective_from < at]
        after = [e for e in stored.eras if e.effective_from > at]
        spec = dataclasses.replace(stored, positions=tuple(draft.positions), eras=(*before, new_era, *after))
        offset = schedule.cycle_offset(spec, len(before))
        spec = dataclasses.replace(spec, eras=(*before, dataclasses.replace(new_era, offset=offset), *after))
    users = {u for era in spec.eras for u in era.participants}
    overrides = []
    if rotation is not None:
        for o in Override.objects.filter(rotation=rotation, start__lt=until, end__gt=since).order_by("start", "pk"):
            users.add(o.user_id)
            overrides.append(
                schedule.override_make(
                    rotation.pk, o.user_id, o.start, o.end, o.position or None, o.replaces_user_id, o.pk
                )
            )
    exclusions = [
        schedule.exclusion_make(x.user_id, x.start, x.end, x.pk, x.reason)
        for x in Exclusion.objects.filter(user_id__in=users, start__lt=until, end__gt=since).order_by("start", "pk")
    ]
    shifts = schedule.rotation_shifts(spec, exclusions, overrides, since, until)
    gaps = schedule.coverage_gaps([spec], exclusions, overrides, since, until)
    return DraftPreview(shifts=[s for s in shifts if s.user_id is not None], gaps=gaps)
