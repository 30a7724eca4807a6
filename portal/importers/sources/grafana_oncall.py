"""Grafana OnCall public API (/api/v1/): fetch an organisation's on-call configuration, map it to a plan.

Export: {"source": "grafana_oncall", "since", "until", "users", "schedules" (each with its "shifts",
the on_call_shifts it names, and "final_shifts", OnCall's own answer for [since, until)),
"escalation_chains", "escalation_policies", "integrations"}.

Mapping:
* a rolling_users shift is a layer (its `level` orders layers; a higher level wins where it covers);
  the turn is `interval` x `frequency`; the shift's events (each `duration` long from `start`'s time of
  day, on the `by_day` days for a weekly shift) are the layer's restriction windows; `until` ends it.
* an escalation chain is a team with that policy; "notify on call from schedule" targets the schedule's
  position, so each schedule a chain names becomes rotations in the chain's team.
* alertmanager / grafana_alerting integrations become Alertmanager integrations, webhook ones generic.
What the mapping cannot express it names: daily shifts limited to some days (OnCall counts only the
listed days as turns), several people per turn, monthly shifts, single and recurrent events, shifts of
one schedule in different time zones, and escalation steps Backstop has no equivalent of.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.importers.layers import Layer, layer_rotations
from portal.importers.plan import (
    DAY_MINUTES,
    FULL_WEEK,
    IntegrationPlan,
    Mask,
    OverridePlan,
    Plan,
    PolicyPlan,
    SourceAnswer,
    StepPlan,
    TeamPlan,
    Unmapped,
    UserPlan,
    mask_normalise,
    plan_members_fill,
)

SOURCE = "grafana_oncall"
_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
_FREQUENCY_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
_INTEGRATION_KINDS = {"alertmanager": "alertmanager", "grafana_alerting": "alertmanager", "webhook": "generic"}
# OnCall's "repeat escalation" step repeats the chain at most this many times.
_ONCALL_REPEATS = 5


_UTC_ZONE = ZoneInfo("UTC")


def parse_time(value: str, tz: ZoneInfo = _UTC_ZONE) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)  # OnCall gives shift times as wall-clock time in the shift's zone
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------- fetch


def fetch(*, token: str, since: datetime, until: datetime, base_url: str, verify: Any = True) -> dict:
    """Read the organisation with an API token (read access is enough; nothing is written)."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = token
    session.verify = verify

    def all_of(path: str, **params: str) -> list[dict]:
        out: list[dict] = []
        url: str | None = f"{base_url.rstrip('/')}/api/v1/{path}/"
        while url:
            response = session.get(url, params=params, timeout=30)
            response.raise_for_status()
            body = response.json()
            out += body["results"]
            url, params = body.get("next"), {}
        return out

    shifts = {s["id"]: s for s in all_of("on_call_shifts")}
    schedules = all_of("schedules")
    # final_shifts takes dates; ask for whole days around the window and clip to it.
    days = {"start_date": since.date().isoformat(), "end_date": (until + timedelta(days=1)).date().isoformat()}
    for schedule in schedules:
        schedule["shifts"] = [shifts[i] for i in schedule.get("on_call_shifts", []) if i in shifts]
        schedule["final_shifts"] = all_of(f"schedules/{schedule['id']}/final_shifts", **days)
    return {
        "source": SOURCE,
        "since": since.astimezone(UTC).isoformat(),
        "until": until.astimezone(UTC).isoformat(),
        "users": all_of("users"),
        "schedules": schedules,
        "escalation_chains": all_of("escalation_chains"),
        "escalation_policies": all_of("escalation_policies"),
        "integrations": all_of("integrations"),
    }


# --------------------------------------------------------------------------- map


def _users(export: dict, plan: Plan) -> None:
    for raw in export.get("users", []):
        email = (raw.get("email") or "").strip().lower()
        if not email:
            plan.unmapped.append(Unmapped("user", raw.get("username") or raw["id"], "no e-mail address to match by"))
            continue
        plan.users.append(
            UserPlan(
                external_id=raw["id"],
                email=email,
                name=raw.get("username") or "",
                time_zone=raw.get("timezone") or "UTC",
            )
        )
    # Notification rules live in each user's Grafana profile, not in the public API: nothing to map.


def _shift_layer(shift: dict, tz: ZoneInfo, label: str) -> Layer | str:
    """A rolling_users shift as a layer, or the reason it cannot be one."""
    frequency = shift.get("frequency")
    interval = int(shift.get("interval") or 1)
    if frequency not in _FREQUENCY_SECONDS:
        return f"{frequency} shifts have no Backstop equivalent"
    groups = shift.get("rolling_users") or []
    if any(len(group) != 1 for group in groups):
        return "several people share a turn; a Backstop position is held by one person"
    users = [group[0] for group in groups]
    first = int(shift.get("start_rotation_from_user_index") or 0)
    users = users[first:] + users[:first]
    start = parse_time(shift["start"], tz)
    local = start.astimezone(tz)
    turn = _FREQUENCY_SECONDS[frequency] * interval
    duration = int(shift["duration"])
    if duration % 60:
        return "events are kept to the minute in Backstop"
    by_day = shift.get("by_day") or []
    tod = local.hour * 60 + local.minute
    mask: Mask
    if duration >= turn and not by_day:
        mask = list(FULL_WEEK)
    elif frequency == "weekly" and interval == 1:
        days = [_DAYS.index(d) for d in by_day] or [local.weekday()]
        mask = mask_normalise([(d * DAY_MINUTES + tod, d * DAY_MINUTES + tod + duration // 60) for d in days])
    elif frequency == "daily" and interval == 1 and not by_day:
        mask = mask_normalise([(d * DAY_MINUTES + tod, d * DAY_MINUTES + tod + duration // 60) for d in range(7)])
    elif frequency == "daily" and by_day:
        return "a daily shift on some days only: OnCall counts only those days as turns, Backstop every day"
    else:
        return f"events shorter than the turn every {interval} {frequency} period(s) have no Backstop equivalent"
    return Layer(
        external_id=shift["id"],
        name=shift.get("name") or label,
        start=start,
        end=parse_time(shift["until"], tz) if shift.get("until") else None,
        anchor=parse_time(shift.get("rotation_start") or shift["start"], tz),
        turn_seconds=turn,
        users=users,
        mask=mask,
    )


def position_name(schedule: dict) -> str:
    return (schedule.get("name") or schedule["id"]).strip()[:40]


def _layers(schedule: dict, tz: ZoneInfo, plan: Plan) -> tuple[list[Layer], list[dict]]:
    """The schedule's rolling shifts as layers, lowest level first, and its override shifts."""
    name = schedule["name"]
    layers: list[tuple[int, Layer]] = []
    overrides = []
    for order, shift in enumerate(schedule.get("shifts", [])):
        label = f"{name} / {shift.get('name') or shift['id']}"
        if shift["type"] == "override":
            overrides.append(shift)
            continue
        if shift["type"] != "rolling_users":
            plan.unmapped.append(
                Unmapped("shift", label, f"{shift['type']} shifts are not imported (use a rotation or an override)")
            )
            continue
        if (shift.get("time_zone") or str(tz)) != str(tz):
            plan.unmapped.append(
                Unmapped("shift", label, "its time zone differs from the schedule's; layers are merged in one zone")
            )
            continue
        layer = _shift_layer(shift, tz, label)
        if isinstance(layer, str):
            plan.unmapped.append(Unmapped("shift", label, layer))
            continue
        layers.append((int(shift.get("level") or 0) * 10_000 + order, layer))
    return [layer for _, layer in sorted(layers, key=lambda pair: pair[0])], overrides


def _schedule(schedule: dict, team_keys: list[str], plan: Plan, since: datetime, until: datetime) -> None:
    name = schedule["name"]
    try:
        tz = ZoneInfo(schedule.get("time_zone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        plan.unmapped.append(Unmapped("schedule", name, f"unknown time zone {schedule.get('time_zone')!r}"))
        return
    if schedule.get("type") not in (None, "web", "api"):
        plan.unmapped.append(
            Unmapped("schedule", name, f"a {schedule['type']} (iCal) schedule: its events are not in the API")
        )
    ordered, overrides = _layers(schedule, tz, plan)
    position = position_name(schedule)
    for team_key in team_keys:
        rotations = layer_rotations(
            schedule_name=name, layers=ordered, tz=tz, team_key=team_key, position=position, plan=plan, what="shift"
        )
        plan.rotations += rotations
        for shift in overrides:
            start = parse_time(shift["start"], ZoneInfo(shift.get("time_zone") or str(tz)))
            for who in shift.get("users") or [u for g in shift.get("rolling_users") or [] for u in g][:1]:
                plan.overrides.append(
                    OverridePlan(
                        external_id=f"{team_key}:{shift['id']}",
                        rotation_external_ids=[r.external_id for r in rotations],
                        position=position,
                        user=who,
                        start=start,
                        end=start + timedelta(seconds=int(shift["duration"])),
                    )
                )
        entries = []
        for item in schedule.get("final_shifts", []):
            s, e = parse_time(item["shift_start"]), parse_time(item["shift_end"])
            if s < until and e > since:
                entries.append((max(s, since), min(e, until), item["user_pk"]))
        plan.answers.append(
            SourceAnswer(
                schedule_id=schedule["id"],
                name=name,
                team_key=team_key,
                position=position,
                since=since,
                until=until,
                entries=entries,
            )
        )


def _chains(export: dict, plan: Plan, schedules: dict[str, dict]) -> dict[str, list[str]]:
    teams_of: dict[str, list[str]] = {}
    steps_of: dict[str, list[dict]] = {}
    for raw in export.get("escalation_policies", []):
        steps_of.setdefault(raw["escalation_chain_id"], []).append(raw)
    for chain in export.get("escalation_chains", []):
        team_key = f"chain:{chain['id']}"
        steps: list[StepPlan] = []
        repeat = 0
        pending: list[tuple[str, str]] = []
        for raw in sorted(steps_of.get(chain["id"], []), key=lambda r: r.get("position", 0)):
            kind = raw.get("type")
            if kind == "wait":
                steps.append(StepPlan(delay_minutes=int(raw.get("duration") or 0) // 60, targets=pending))
                pending = []
            elif kind in ("notify_persons", "notify_person_next_each_time"):
                if kind == "notify_person_next_each_time":
                    plan.unmapped.append(
                        Unmapped(
                            "escalation step",
                            chain["name"],
                            "'notify next person each time' pages all of them in Backstop",
                        )
                    )
                pending += [
                    ("user", u)
                    for u in raw.get("persons_to_notify") or raw.get("persons_to_notify_next_each_time") or []
                ]
            elif kind == "notify_on_call_from_schedule":
                schedule = schedules.get(raw.get("notify_on_call_from_schedule") or "")
                if schedule is None:
                    plan.unmapped.append(
                        Unmapped("escalation step", chain["name"], "its schedule is not in the export")
                    )
                    continue
                pending.append(("position", position_name(schedule)))
                teams_of.setdefault(schedule["id"], []).append(team_key)
            elif kind == "repeat_escalation":
                repeat = _ONCALL_REPEATS
            else:
                plan.unmapped.append(
                    Unmapped("escalation step", chain["name"], f"a {kind} step has no Backstop equivalent")
                )
        if pending:
            steps.append(StepPlan(delay_minutes=0, targets=pending))
        plan.policies.append(
            PolicyPlan(external_id=chain["id"], team_key=team_key, name=chain["name"][:100], repeat=repeat, steps=steps)
        )
        plan.teams.append(TeamPlan(key=team_key, name=chain["name"][:100], time_zone="UTC"))
    return teams_of


def _integrations(export: dict, plan: Plan) -> None:
    chains = {p.external_id for p in plan.policies}
    for raw in export.get("integrations", []):
        chain = (raw.get("default_route") or {}).get("escalation_chain_id")
        kind = _INTEGRATION_KINDS.get(raw.get("type", ""))
        if kind is None:
            plan.unmapped.append(
                Unmapped("integration", raw["name"], f"{raw.get('type')} integrations have no Backstop equivalent")
            )
        elif chain not in chains:
            plan.unmapped.append(
                Unmapped("integration", raw["name"], "its default route has no imported escalation chain")
            )
        else:
            if len(raw.get("routes") or []) > 1:
                plan.unmapped.append(Unmapped("integration", raw["name"], "only the default route is imported"))
            plan.integrations.append(
                IntegrationPlan(
                    external_id=raw["id"],
                    team_key=f"chain:{chain}",
                    name=raw["name"][:100],
                    kind=kind,
                    policy_external_id=chain,
                )
            )


def map_export(export: dict) -> Plan:
    """Vendor shape -> plan. Pure: reads nothing but `export`."""
    plan = Plan(source=SOURCE)
    since, until = parse_time(export["since"]), parse_time(export["until"])
    _users(export, plan)
    schedules = {s["id"]: s for s in export.get("schedules", [])}
    teams_of = _chains(export, plan, schedules)
    for schedule in export.get("schedules", []):
        _schedule(schedule, teams_of.get(schedule["id"], [f"schedule:{schedule['id']}"]), plan, since, until)
    _integrations(export, plan)
    plan_members_fill(plan)
    return plan
