"""Opsgenie REST API v2: fetch an account's on-call configuration, map it to a Backstop plan.

Export: {"source": "opsgenie", "since", "until", "users", "schedules" (each with its "rotations",
"overrides" and "timeline", Opsgenie's own final timeline for [since, until)), "escalations",
"integrations"}.

Mapping:
* a schedule's rotations are all on call together (Opsgenie has no layer precedence), exactly as
  Backstop's rotations of one position are: each rotation becomes a rotation holding the schedule's
  position; its time restriction becomes restriction windows; its end date ends it.
* an escalation becomes a team with that policy. Opsgenie delays count from the alert's creation, a
  Backstop step's delay from the step before: step i waits (delay of i+1) - (delay of i); the last waits
  the repeat's waitInterval. Rules that page "next"/"previous" on-call or a team are named, not mapped.
* API-style integrations keep working unchanged against Backstop's Opsgenie Alert API (new URL, new key).
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
    parse_time,
    plan_members_fill,
)

SOURCE = "opsgenie"
DEFAULT_BASE_URL = "https://api.opsgenie.com"
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_TURN_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
# Integrations that post to Opsgenie's Alert API: Backstop speaks it, so the sender only changes URL and key.
_ALERT_API_TYPES = {"API", "Prometheus", "Alertmanager", "Grafana", "Datadog", "Webhook"}


# --------------------------------------------------------------------------- fetch


def fetch(
    *, token: str, since: datetime, until: datetime, base_url: str = DEFAULT_BASE_URL, verify: Any = True
) -> dict:
    """Read the account with a read-only API key (GenieKey); nothing is written."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"GenieKey {token}"
    session.verify = verify
    root = base_url.rstrip("/")

    def get(path: str, **params: str) -> Any:
        response = session.get(f"{root}/v2/{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def all_of(path: str, **params: str) -> list[dict]:
        out: list[dict] = []
        url: str | None = f"{root}/v2/{path}"
        while url:
            response = session.get(url, params=params, timeout=30)
            response.raise_for_status()
            body = response.json()
            out += body["data"]
            url, params = (body.get("paging") or {}).get("next"), {}
        return out

    weeks = int(-(-(until - since) // timedelta(weeks=1)))
    schedules = all_of("schedules")
    for schedule in schedules:
        sid = schedule["id"]
        schedule["rotations"] = get(f"schedules/{sid}/rotations")["data"]
        schedule["overrides"] = get(f"schedules/{sid}/overrides")["data"]
        schedule["timeline"] = get(
            f"schedules/{sid}/timeline",
            interval=str(weeks),
            intervalUnit="weeks",
            date=since.astimezone(UTC).isoformat(),
        )["data"]
    return {
        "source": SOURCE,
        "since": since.astimezone(UTC).isoformat(),
        "until": until.astimezone(UTC).isoformat(),
        "users": all_of("users"),
        "schedules": schedules,
        "escalations": all_of("escalations"),
        "integrations": all_of("integrations"),
    }


# --------------------------------------------------------------------------- map


def _users(export: dict, plan: Plan) -> None:
    for raw in export.get("users", []):
        email = (raw.get("username") or "").strip().lower()
        if "@" not in email:
            plan.unmapped.append(Unmapped("user", raw.get("fullName") or raw["id"], "no e-mail address to match by"))
            continue
        plan.users.append(
            UserPlan(
                external_id=raw["id"],
                email=email,
                name=raw.get("fullName") or "",
                time_zone=raw.get("timeZone") or "UTC",
            )
        )
    # Contact methods and notification rules are per-user endpoints behind a user's own consent in Opsgenie;
    # they are not read (people set theirs up on their Backstop profile).


def _restriction_mask(restriction: dict | None) -> Mask | str:
    if not restriction:
        return list(FULL_WEEK)
    kind = restriction.get("type")
    if kind == "time-of-day":
        r = restriction["restriction"]
        start, end = r["startHour"] * 60 + r["startMin"], r["endHour"] * 60 + r["endMin"]
        length = (end - start) % DAY_MINUTES or DAY_MINUTES
        return mask_normalise([(d * DAY_MINUTES + start, d * DAY_MINUTES + start + length) for d in range(7)])
    if kind == "weekday-and-time-of-day":
        intervals = []
        for r in restriction["restrictions"]:
            a = _WEEKDAYS.index(r["startDay"].lower()) * DAY_MINUTES + r["startHour"] * 60 + r["startMin"]
            b = _WEEKDAYS.index(r["endDay"].lower()) * DAY_MINUTES + r["endHour"] * 60 + r["endMin"]
            intervals.append((a, a + ((b - a) % (7 * DAY_MINUTES) or 7 * DAY_MINUTES)))
        return mask_normalise(intervals)
    return f"unknown time restriction {kind!r}"


def _rotation_layer(rotation: dict, label: str) -> Layer | str:
    if rotation.get("type") not in _TURN_SECONDS:
        return f"{rotation.get('type')} rotations have no Backstop equivalent"
    participants = rotation.get("participants") or []
    if any(p.get("type") != "user" for p in participants):
        return "a participant is a team, an escalation or an empty slot; a Backstop rotation lists people"
    mask = _restriction_mask(rotation.get("timeRestriction"))
    if isinstance(mask, str):
        return mask
    start = parse_time(rotation["startDate"])
    return Layer(
        external_id=rotation["id"],
        name=rotation.get("name") or label,
        start=start,
        end=parse_time(rotation["endDate"]) if rotation.get("endDate") else None,
        anchor=start,
        turn_seconds=_TURN_SECONDS[rotation["type"]] * int(rotation.get("length") or 1),
        users=[p["id"] for p in participants],
        mask=mask,
    )


def position_name(schedule: dict) -> str:
    return (schedule.get("name") or schedule["id"]).strip()[:40]


def _schedule(schedule: dict, team_keys: list[str], plan: Plan, since: datetime, until: datetime) -> None:
    name = schedule["name"]
    try:
        tz = ZoneInfo(schedule.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        plan.unmapped.append(Unmapped("schedule", name, f"unknown time zone {schedule.get('timezone')!r}"))
        return
    layers = []
    for rotation in schedule.get("rotations", []):
        label = f"{name} / {rotation.get('name') or rotation['id']}"
        layer = _rotation_layer(rotation, label)
        if isinstance(layer, str):
            plan.unmapped.append(Unmapped("rotation", label, layer))
        else:
            layers.append(layer)
    position = position_name(schedule)
    by_name = {r.get("name"): r["id"] for r in schedule.get("rotations", [])}
    for team_key in team_keys:
        rotations = layer_rotations(
            schedule_name=name,
            layers=layers,
            tz=tz,
            team_key=team_key,
            position=position,
            plan=plan,
            what="rotation",
            precedence=False,
        )
        plan.rotations += rotations
        for override in schedule.get("overrides", []):
            named = {by_name.get(r.get("name"), r.get("id")) for r in override.get("rotations") or []}
            targets = [r.external_id for r in rotations if not named or r.external_id.rsplit(":", 1)[1] in named]
            plan.overrides.append(
                OverridePlan(
                    external_id=f"{team_key}:{override['alias']}",
                    rotation_external_ids=targets,
                    position=position,
                    user=override["user"]["id"],
                    start=parse_time(override["startDate"]),
                    end=parse_time(override["endDate"]),
                )
            )
        entries = []
        for rotation in ((schedule.get("timeline") or {}).get("finalTimeline") or {}).get("rotations", []):
            for period in rotation.get("periods", []):
                recipient = period.get("recipient") or {}
                if recipient.get("type") != "user":
                    continue
                s, e = parse_time(period["startDate"]), parse_time(period["endDate"])
                if s < until and e > since:
                    entries.append((max(s, since), min(e, until), recipient["id"]))
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


def _escalations(export: dict, plan: Plan, schedules: dict[str, dict]) -> dict[str, list[str]]:
    teams_of: dict[str, list[str]] = {}
    for raw in export.get("escalations", []):
        team_key = f"escalation:{raw['id']}"
        by_delay: dict[int, list[tuple[str, str]]] = {}
        for rule in raw.get("rules", []):
            delay = int(rule["delay"]["timeAmount"]) * (60 if rule["delay"].get("timeUnit") == "hours" else 1)
            recipient = rule.get("recipient") or {}
            if rule.get("notifyType", "default") not in ("default", "all"):
                plan.unmapped.append(
                    Unmapped(
                        "escalation rule",
                        raw["name"],
                        f"notifying the {rule['notifyType']} on-call has no Backstop equivalent",
                    )
                )
                continue
            if recipient.get("type") == "schedule" and recipient.get("id") in schedules:
                target = ("position", position_name(schedules[recipient["id"]]))
                teams_of.setdefault(recipient["id"], []).append(team_key)
            elif recipient.get("type") == "user":
                target = ("user", recipient["id"])
            else:
                plan.unmapped.append(
                    Unmapped(
                        "escalation rule",
                        raw["name"],
                        f"a {recipient.get('type')} recipient has no Backstop equivalent",
                    )
                )
                continue
            by_delay.setdefault(delay, []).append(target)
        delays = sorted(by_delay)
        repeat = raw.get("repeat") or {}
        steps = [
            StepPlan(
                delay_minutes=(delays[i + 1] - d) if i + 1 < len(delays) else int(repeat.get("waitInterval") or 0),
                targets=by_delay[d],
            )
            for i, d in enumerate(delays)
        ]
        if delays and delays[0] > 0:
            plan.unmapped.append(
                Unmapped(
                    "escalation rule",
                    raw["name"],
                    f"the first rule waits {delays[0]} min; Backstop's first step pages at once",
                )
            )
        plan.policies.append(
            PolicyPlan(
                external_id=raw["id"],
                team_key=team_key,
                name=raw["name"][:100],
                repeat=int(repeat.get("count") or 0),
                steps=steps,
            )
        )
        plan.teams.append(TeamPlan(key=team_key, name=raw["name"][:100], time_zone="UTC"))
    return teams_of


def _integrations(export: dict, plan: Plan, escalations: list[dict]) -> None:
    by_team = {}
    for raw in escalations:
        team_id = (raw.get("ownerTeam") or {}).get("id")
        if team_id and team_id not in by_team:
            by_team[team_id] = raw["id"]
    for raw in export.get("integrations", []):
        if raw.get("type") not in _ALERT_API_TYPES:
            plan.unmapped.append(
                Unmapped("integration", raw["name"], f"{raw.get('type')} integrations have no Backstop equivalent")
            )
            continue
        escalation = by_team.get(raw.get("teamId") or "")
        if escalation is None:
            plan.unmapped.append(Unmapped("integration", raw["name"], "its team has no imported escalation"))
            continue
        plan.integrations.append(
            IntegrationPlan(
                external_id=raw["id"],
                team_key=f"escalation:{escalation}",
                name=raw["name"][:100],
                kind="opsgenie",
                policy_external_id=escalation,
            )
        )


def map_export(export: dict) -> Plan:
    """Vendor shape -> plan. Pure: reads nothing but `export`."""
    plan = Plan(source=SOURCE)
    since, until = parse_time(export["since"]), parse_time(export["until"])
    _users(export, plan)
    schedules = {s["id"]: s for s in export.get("schedules", [])}
    teams_of = _escalations(export, plan, schedules)
    for schedule in export.get("schedules", []):
        _schedule(schedule, teams_of.get(schedule["id"], [f"schedule:{schedule['id']}"]), plan, since, until)
    _integrations(export, plan, export.get("escalations", []))
    plan_members_fill(plan)
    return plan
