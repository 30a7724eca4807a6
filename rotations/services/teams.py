"""Teams: create, update, calendar tokens."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.text import slugify

from rotations.audit import audit_record, diff
from rotations.models import (
    AuditEntry,
    Team,
)
from rotations.models.roster import new_token
from rotations.services.hooks import UNSET, _Unset
from rotations.services.validation import (
    _team_policy_check,
    validate_slack_id,
    validate_team_name,
    validate_time_zone,
)

# --------------------------------------------------------------------------- teams


def _team_state(team: Team) -> dict[str, Any]:
    return {
        "name": team.name,
        "slug": team.slug,
        "description": team.description,
        "time_zone": team.time_zone,
        "handover_email": team.handover_email,
        "escalation_policy": team.escalation_policy_id,
        "slack_channel_id": team.slack_channel_id,
        "slack_usergroup_id": team.slack_usergroup_id,
    }


@transaction.atomic
def team_create(
    *,
    name: str,
    actor,
    slug: str = "",
    time_zone: str = "UTC",
    description: str = "",
    handover_email: str = "",
    escalation_policy=None,
    slack_channel_id: str = "",
    slack_usergroup_id: str = "",
) -> Team:
    validate_team_name(name)
    validate_time_zone(time_zone)
    # A new team has no policies yet, so any policy named here is another team's.
    _team_policy_check(team=None, policy=escalation_policy)
    team = Team(
        name=name,
        slug=slug or slugify(name),
        time_zone=time_zone,
        description=description,
        handover_email=handover_email,
        escalation_policy=escalation_policy,
        slack_channel_id=validate_slack_id(slack_channel_id, "slack_channel_id"),
        slack_usergroup_id=validate_slack_id(slack_usergroup_id, "slack_usergroup_id"),
    )
    team.full_clean(exclude=["ical_token"])
    team.save()
    audit_record(actor=actor, team=team, action=AuditEntry.Action.CREATE, obj=team, changes=diff({}, _team_state(team)))
    return team


@transaction.atomic
def team_update(
    *,
    team: Team,
    actor,
    name: str | _Unset = UNSET,
    slug: str | _Unset = UNSET,
    time_zone: str | _Unset = UNSET,
    description: str | _Unset = UNSET,
    handover_email: str | _Unset = UNSET,
    escalation_policy: Any = UNSET,
    slack_channel_id: str | _Unset = UNSET,
    slack_usergroup_id: str | _Unset = UNSET,
) -> Team:
    before = _team_state(team)
    if slack_channel_id is not UNSET:
        slack_channel_id = validate_slack_id(slack_channel_id, "slack_channel_id")
    if slack_usergroup_id is not UNSET:
        slack_usergroup_id = validate_slack_id(slack_usergroup_id, "slack_usergroup_id")
    if name is not UNSET:
        validate_team_name(name)
    if time_zone is not UNSET:
        validate_time_zone(time_zone)
    if escalation_policy is not UNSET:
        _team_policy_check(team=team, policy=escalation_policy)
    for attr, value in (
        ("name", name),
        ("slug", slug),
        ("time_zone", time_zone),
        ("description", description),
        ("handover_email", handover_email),
        ("escalation_policy", escalation_policy),
        ("slack_channel_id", slack_channel_id),
        ("slack_usergroup_id", slack_usergroup_id),
    ):
        if value is not UNSET:
            setattr(team, attr, value)
    team.full_clean(exclude=["ical_token"])
    changes = diff(before, _team_state(team))
    if changes:
        team.save()
        audit_record(actor=actor, team=team, action=AuditEntry.Action.UPDATE, obj=team, changes=changes)
    return team


@transaction.atomic
def team_ical_token_rotate(*, team: Team, actor) -> str:
    """Invalidate the team's feed URL; returns the new token."""
    team.ical_token = new_token()
    team.save(update_fields=["ical_token"])
    audit_record(
        actor=actor,
        team=team,
        action=AuditEntry.Action.UPDATE,
        obj=team,
        changes={"ical_token": ["(old)", "(rotated)"]},
    )
    return team.ical_token


@transaction.atomic
def user_ical_token_rotate(*, user, actor) -> str:
    """Invalidate the user's personal feed URL; returns the new token."""
    user.ical_token = new_token()
    user.save(update_fields=["ical_token"])
    audit_record(
        actor=actor,
        team=None,
        action=AuditEntry.Action.UPDATE,
        obj=user,
        changes={"ical_token": ["(old)", "(rotated)"]},
    )
    return user.ical_token
