"""PagerDuty REST API v2: fetch an account's on-call configuration, map it to a Backstop plan.

The export (what `fetch` returns, and what a JSON export file for an air-gapped install holds) is
{"source": "pagerduty", "since", "until", "users", "schedules", "escalation_policies", "services"}:
the REST resources as PagerDuty returns them, users with contact_methods and notification_rules
included, each schedule rendered for [since, until) (final_schedule.rendered_schedule_entries, the
ground truth the comparison checks against) and carrying its "overrides".

Mapping (PagerDuty -> Backstop):
* an escalation policy becomes a team of its own with that policy; each schedule it names becomes, in
  that team, one rotation per layer, all holding one position named after the schedule, so a step
  targeting the schedule targets that position. A schedule no policy names gets a team of its own.
* layer precedence (a later layer wins where it has someone): each lower layer's restriction windows
  lose the weekly windows of the layers above it, era by era between the layers' starts and ends, so at
  any moment at most one layer rotation is active. A layer before its start or after its end is an era
  with nobody in it.
* overrides become position overrides on every layer rotation of the schedule; a Backstop override only
  replaces a scheduled shift, so an override at a time no layer covers shows in the comparison, with a note
  saying why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.importers.layers import Layer, layer_rotations
from portal.importers.plan import (
    DAY_MINUTES,
    FULL_WEEK,
    ContactPlan,
    IntegrationPlan,
    Mask,
    OverridePlan,
    Plan,
    PolicyPlan,
    RotationPlan,
    RulePlan,
    SourceAnswer,
    StepPlan,
    TeamPlan,
    Unmapped,
    UserPlan,
    mask_normalise,
    parse_time,
    plan_members_fill,
)

SOURCE = "pagerduty"
DEFAULT_BASE_URL = "https://api.pagerduty.com"
_CONTACT_KINDS = {"email_contact_method": "email", "phone_contact_method": "voice", "sms_contact_method": "sms"}
# Integrations that speak the Events API, which Backstop's PagerDuty endpoint accepts as is.
_EVENTS_INTEGRATIONS = {"events_api_v2_inbound_integration", "generic_events_api_inbound_integration"}


# --------------------------------------------------------------------------- fetch


def fetch(
    *, token: str, since: datetime, until: datetime, base_url: str = DEFAULT_BASE_URL, verify: Any = True
) -> dict:
    """Read the account with a read-only REST API key (the real `pagerduty` client; nothing is written)."""
    import pagerduty  # imported here: only the API path needs it

    window = {"since": since.astimezone(UTC).isoformat(), "until": until.astimezone(UTC).isoformat()}
    with pagerduty.RestApiV2Client(token, base_url=base_url, verify=verify) as client:
        users = client.list_all("users", params={"include[]": ["contact_methods", "notification_rules"]})
        schedules = []
        for ref in client.list_all("schedules"):
            schedule = client.rget(f"schedules/{ref['id']}", params={**window, "time_zone": "UTC"})
            schedule["overrides"] = client.rget(f"schedules/{ref['id']}/overrides", params=window)
            schedules.append(schedule)
        policies = client.list_all("escalation_policies")
        services = client.list_all("services", params={"include[]": ["integrations"]})
    return {
        "source": SOURCE,
        **window,
        "users": users,
        "schedules": schedules,
        "escalation_policies": policies,
        "services": services,
    }


# --------------------------------------------------------------------------- map: users


def _users(export: dict, plan: Plan) -> None:
    for raw in export.get("users", []):
        email = (raw.get("email") or "").strip().lower()
        if not email:
            plan.unmapped.append(Unmapped("user", raw.get("name") or raw["id"], "no e-mail address to match by"))
            continue
        user = UserPlan(
            external_id=raw["id"], email=email, name=raw.get("name", ""), time_zone=raw.get("time_zone") or "UTC"
        )
        for cm in raw.get("contact_methods", []):
            if not isinstance(cm, dict) or "address" not in cm:
                continue  # a bare reference: the export was made without include[]=contact_methods
            kind = _CONTACT_KINDS.get(cm.get("type", ""))
            if kind is None:
                plan.unmapped.append(
                    Unmapped(
                        "contact method",
                        f"{email}: {cm.get('label') or cm.get('type')}",
                        f"{cm.get('type')} has no Backstop equivalent (SMS, voice call and e-mail do)",
                    )
                )
                continue
            value = cm["address"] if kind == "email" else f"+{cm.get('country_code', '')}{cm['address']}"
            user.contacts.append(ContactPlan(external_id=cm["id"], kind=kind, value=value, label=cm.get("label", "")))
        known = {c.external_id for c in user.contacts}
        for rule in raw.get("notification_rules", []):
            if not isinstance(rule, dict) or "contact_method" not in rule:
                continue
            delay = int(rule.get("start_delay_in_minutes") or 0)
            cm_id = rule["contact_method"].get("id", "")
            if cm_id not in known:
                plan.unmapped.append(
                    Unmapped("notification rule", f"{email}: rule {rule['id']}", "its contact method was not imported")
                )
            elif delay > 120:
                plan.unmapped.append(
                    Unmapped(
                        "notification rule",
                        f"{email}: rule {rule['id']}",
                        f"a {delay}-minute delay is longer than Backstop's 120",
                    )
                )
            else:
                urgency = str(rule["urgency"]) if rule.get("urgency") in ("high", "low") else "any"
                user.rules.append(
                    RulePlan(external_id=rule["id"], contact_external_id=cm_id, delay_minutes=delay, urgency=urgency)
                )
        plan.users.append(user)


# --------------------------------------------------------------------------- map: schedules


def _restriction_mask(layer: dict) -> Mask | str:
    """The layer's weekly mask in local minutes, or the reason it cannot be expressed."""
    restrictions = layer.get("restrictions") or []
    if not restrictions:
        return list(FULL_WEEK)
    intervals = []
    for r in restrictions:
        h, m, s = (int(x) for x in str(r["start_time_of_day"]).rstrip("Z").split(":"))
        duration = int(r["duration_seconds"])
        if s or duration % 60:
            return "restrictions are kept to the minute in Backstop; this one has seconds"
        start = h * 60 + m
        if r["type"] == "daily_restriction":
            intervals += [(d * DAY_MINUTES + start, d * DAY_MINUTES + start + duration // 60) for d in range(7)]
        elif r["type"] == "weekly_restriction":
            # PagerDuty numbers days ISO-style: 1 = Monday ... 7 = Sunday.
            d = int(r["start_day_of_week"]) - 1
            intervals.append((d * DAY_MINUTES + start, d * DAY_MINUTES + start + duration // 60))
        else:
            return f"unknown restriction type {r['type']!r}"
    return mask_normalise(intervals)


def position_name(schedule: dict) -> str:
    return (schedule.get("name") or schedule["id"]).strip()[:40]


def _schedules(export: dict, plan: Plan, teams_of: dict[str, list[str]]) -> None:
    since, until = parse_time(export["since"]), parse_time(export["until"])
    for schedule in export.get("schedules", []):
        try:
            tz = ZoneInfo(schedule.get("time_zone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            plan.unmapped.append(
                Unmapped("schedule", schedule["name"], f"unknown time zone {schedule.get('time_zone')!r}")
            )
            continue
        position = position_name(schedule)
        layers = schedule.get("schedule_layers", [])
        masks: list[Mask] = []
        bad = False
        for layer in layers:
            mask = _restriction_mask(layer)
            if isinstance(mask, str):
                plan.unmapped.append(Unmapped("schedule layer", f"{schedule['name']} / {layer.get('name')}", mask))
                bad = True
                break
            masks.append(mask)
        if bad:
            continue
        pd_layers = [
            Layer(
                external_id=f"{schedule['id']}:{layer['id']}",
                name=layer.get("name") or "",
                start=parse_time(layer["start"]),
                end=parse_time(layer["end"]) if layer.get("end") else None,
                anchor=parse_time(layer["rotation_virtual_start"]),
                turn_seconds=int(layer["rotation_turn_length_seconds"]),
                users=[u["user"]["id"] for u in layer.get("users", [])],
                mask=mask,
            )
            for layer, mask in zip(layers, masks, strict=True)
        ]
        for team_key in teams_of.get(schedule["id"], [f"schedule:{schedule['id']}"]):
            rotations = layer_rotations(
                schedule_name=schedule["name"],
                layers=pd_layers,
                tz=tz,
                team_key=team_key,
                position=position,
                plan=plan,
                what="schedule layer",
            )
            plan.rotations += rotations
            rotation_ids = [r.external_id for r in rotations]
            for override in schedule.get("overrides", []):
                plan.overrides.append(
                    OverridePlan(
                        external_id=f"{team_key}:{override['id']}",
                        rotation_external_ids=rotation_ids,
                        position=position,
                        user=override["user"]["id"],
                        start=parse_time(override["start"]),
                        end=parse_time(override["end"]),
                    )
                )
            entries = (schedule.get("final_schedule") or {}).get("rendered_schedule_entries") or []
            plan.answers.append(
                SourceAnswer(
                    schedule_id=schedule["id"],
                    name=schedule["name"],
                    team_key=team_key,
                    position=position,
                    since=since,
                    until=until,
                    entries=[
                        (parse_time(e["start"]), parse_time(e["end"]), e["user"]["id"])
                        for e in entries
                        if e.get("user")
                    ],
                )
            )


# --------------------------------------------------------------------------- map: policies, services


def _policies(export: dict, plan: Plan, schedules: dict[str, dict]) -> dict[str, list[str]]:
    """Policies (one team each); returns schedule id -> the team keys it is used in."""
    teams_of: dict[str, list[str]] = {}
    for raw in export.get("escalation_policies", []):
        team_key = f"policy:{raw['id']}"
        steps = []
        for rule in raw.get("escalation_rules", []):
            targets: list[tuple[str, str]] = []
            for target in rule.get("targets", []):
                kind = target.get("type", "")
                if kind.startswith("schedule"):
                    if target["id"] not in schedules:
                        plan.unmapped.append(
                            Unmapped("escalation target", raw["name"], f"schedule {target['id']} is not in the export")
                        )
                        continue
                    targets.append(("position", position_name(schedules[target["id"]])))
                    teams_of.setdefault(target["id"], []).append(team_key)
                elif kind.startswith("user"):
                    targets.append(("user", target["id"]))
                else:
                    plan.unmapped.append(
                        Unmapped("escalation target", raw["name"], f"a {kind} target has no Backstop equivalent")
                    )
            steps.append(StepPlan(delay_minutes=int(rule.get("escalation_delay_in_minutes") or 0), targets=targets))
        plan.policies.append(
            PolicyPlan(
                external_id=raw["id"],
                team_key=team_key,
                name=raw["name"][:100],
                repeat=int(raw.get("num_loops") or 0),
                steps=steps,
            )
        )
        plan.teams.append(TeamPlan(key=team_key, name=raw["name"][:100], time_zone="UTC"))
    return teams_of


def _services(export: dict, plan: Plan) -> None:
    policies = {p.external_id for p in plan.policies}
    for service in export.get("services", []):
        policy_id = (service.get("escalation_policy") or {}).get("id")
        if policy_id not in policies:
            plan.unmapped.append(Unmapped("service", service["name"], "its escalation policy was not imported"))
            continue
        for integration in service.get("integrations", []):
            if not isinstance(integration, dict) or "type" not in integration:
                continue
            name = f"{service['name']} / {integration.get('name') or integration['type']}"
            if integration["type"] not in _EVENTS_INTEGRATIONS:
                plan.unmapped.append(
                    Unmapped(
                        "integration",
                        name,
                        f"{integration['type']} is not the Events API; point the sender at a generic webhook instead",
                    )
                )
                continue
            plan.integrations.append(
                IntegrationPlan(
                    external_id=integration["id"],
                    team_key=f"policy:{policy_id}",
                    name=name[:100],
                    kind="pagerduty",
                    policy_external_id=policy_id,
                )
            )


def map_export(export: dict) -> Plan:
    """Vendor shape -> plan. Pure: reads nothing but `export`."""
    plan = Plan(source=SOURCE)
    _users(export, plan)
    schedules = {s["id"]: s for s in export.get("schedules", [])}
    teams_of = _policies(export, plan, schedules)
    _schedules(export, plan, teams_of)
    _services(export, plan)
    schedule_names = {s["id"]: s["name"] for s in export.get("schedules", [])}

    def team_name(rotation: RotationPlan) -> str:
        schedule_id = rotation.team_key.split(":", 1)[1]
        return schedule_names.get(schedule_id, schedule_id)[:100]

    plan_members_fill(plan, team_name=team_name)
    known = {u.external_id for u in plan.users}
    for team in plan.teams:
        missing = [u for u in team.members if u not in known]
        if missing:
            plan.unmapped.append(
                Unmapped("team", team.name, f"people {', '.join(missing)} are not in the export's users")
            )
    return plan
