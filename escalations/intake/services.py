"""Integration, maintenance-window and heartbeat writes: the one write path for the API, the admin and
the portal. Keyword-only; each validates, writes and audits (rotations.audit) in one transaction.

Every reference is checked against the team it is used in: an integration's policy, a window's or a
heartbeat's integration must belong to the same team, or a manager of one team could route alerts
through, or silence, another team's configuration. Errors are field errors (a 400 in the API).
Secrets (integration keys, heartbeat tokens) are never written to the audit log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from escalations.models import EscalationPolicy, Heartbeat, Integration, MaintenanceWindow
from escalations.models.intake import integration_key_new
from rotations.audit import audit_record, diff
from rotations.models import AuditEntry, Team

HEARTBEAT_INTERVAL_MIN = timedelta(seconds=30)
HEARTBEAT_INTERVAL_MAX = timedelta(days=31)
HEARTBEAT_GRACE_MAX = timedelta(days=7)
SECRET_ROTATED = ["(old secret)", "(new secret)"]


def _name_check(*, model: type[Integration] | type[Heartbeat], team: Team, name: str, exclude_pk: int | None) -> str:
    name = (name or "").strip()
    label = str(model._meta.verbose_name)
    if not name:
        raise ValidationError({"name": [f"Give the {label} a name."]})
    clash = model.objects.filter(team=team, name=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError(
            {"name": [f"{team} already has {'an' if label[0] in 'aeiou' else 'a'} {label} called {name!r}."]}
        )
    return name


def _integration_of_team_check(*, team: Team, integration: Integration | None) -> None:
    if integration is not None and integration.team_id != team.pk:
        raise ValidationError({"integration": ["The integration belongs to another team."]})


# --- integrations --------------------------------------------------------------------------------


def _integration_state(integration: Integration) -> dict[str, Any]:
    return {
        "name": integration.name,
        "kind": integration.kind,
        "enabled": integration.enabled,
        "urgency_rule": integration.urgency_rule,
        "policy": integration.policy_id,
    }


def _urgency_rule_check(rule: str) -> None:
    if rule not in Integration.UrgencyRule.values:
        raise ValidationError({"urgency_rule": [f"Choose one of {', '.join(Integration.UrgencyRule.values)}."]})


def integration_check(
    *, team: Team, name: str, kind: str, policy: EscalationPolicy | None, integration: Integration | None = None
) -> str:
    """Validate an integration's fields (also used by the admin form); returns the cleaned name."""
    if kind not in Integration.Kind.values:
        raise ValidationError({"kind": [f"Unknown kind {kind!r}."]})
    if integration is not None and kind != integration.kind:
        raise ValidationError({"kind": ["The kind of an integration cannot change."]})
    if policy is not None and policy.team_id != team.pk:
        raise ValidationError({"policy": ["The policy belongs to another team."]})
    return _name_check(
        model=Integration, team=team, name=name, exclude_pk=integration.pk if integration is not None else None
    )


@transaction.atomic
def integration_create(
    *,
    team: Team,
    name: str,
    kind: str,
    actor,
    enabled: bool = True,
    policy: EscalationPolicy | None = None,
    urgency_rule: str = Integration.UrgencyRule.SEVERITY,
) -> Integration:
    name = integration_check(team=team, name=name, kind=kind, policy=policy)
    _urgency_rule_check(urgency_rule)
    integration = Integration.objects.create(
        team=team, name=name, kind=kind, enabled=enabled, policy=policy, urgency_rule=urgency_rule
    )
    audit_record(
        actor=actor,
        team=team,
        action=AuditEntry.Action.CREATE,
        obj=integration,
        changes=diff({}, _integration_state(integration)),
    )
    return integration


@transaction.atomic
def integration_update(
    *,
    integration: Integration,
    actor,
    name: str,
    kind: str,
    enabled: bool,
    policy: EscalationPolicy | None,
    urgency_rule: str | None = None,
) -> Integration:
    integration = Integration.objects.select_for_update(of=("self",)).select_related("team").get(pk=integration.pk)
    name = integration_check(team=integration.team, name=name, kind=kind, policy=policy, integration=integration)
    before = _integration_state(integration)
    if urgency_rule is not None:
        _urgency_rule_check(urgency_rule)
        integration.urgency_rule = urgency_rule
    integration.name, integration.enabled, integration.policy = name, enabled, policy
    integration.save(update_fields=["name", "enabled", "policy", "urgency_rule"])
    changes = diff(before, _integration_state(integration))
    if changes:
        audit_record(
            actor=actor, team=integration.team, action=AuditEntry.Action.UPDATE, obj=integration, changes=changes
        )
    return integration


@transaction.atomic
def integration_key_rotate(*, integration: Integration, actor) -> Integration:
    """A new key; the old one stops working at once."""
    integration = Integration.objects.select_for_update(of=("self",)).select_related("team").get(pk=integration.pk)
    integration.key = integration_key_new()
    integration.save(update_fields=["key"])
    audit_record(
        actor=actor,
        team=integration.team,
        action=AuditEntry.Action.UPDATE,
        obj=integration,
        changes={"key": SECRET_ROTATED},
    )
    return integration


@transaction.atomic
def integration_delete(*, integration: Integration, actor) -> None:
    """Delete an integration with its alerts and its maintenance windows (CASCADE); heartbeats and change
    events that named it keep existing without it."""
    integration = Integration.objects.select_for_update(of=("self",)).select_related("team").get(pk=integration.pk)
    audit_record(
        actor=actor,
        team=integration.team,
        action=AuditEntry.Action.DELETE,
        obj=integration,
        changes=diff(_integration_state(integration), {}),
    )
    integration.delete()


# --- maintenance windows -------------------------------------------------------------------------


def _window_state(window: MaintenanceWindow) -> dict[str, Any]:
    return {"integration": window.integration_id, "start": window.start, "end": window.end, "reason": window.reason}


def maintenance_window_check(*, team: Team, start: datetime, end: datetime, integration: Integration | None) -> None:
    """Validate a window's fields (also used by the admin form)."""
    if end <= start:
        raise ValidationError({"end": ["The end must be after the start."]})
    _integration_of_team_check(team=team, integration=integration)


@transaction.atomic
def maintenance_window_create(
    *,
    team: Team,
    start: datetime,
    end: datetime,
    actor,
    integration: Integration | None = None,
    reason: str = "",
) -> MaintenanceWindow:
    maintenance_window_check(team=team, start=start, end=end, integration=integration)
    window = MaintenanceWindow.objects.create(
        team=team,
        integration=integration,
        start=start,
        end=end,
        reason=reason,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    audit_record(
        actor=actor, team=team, action=AuditEntry.Action.CREATE, obj=window, changes=diff({}, _window_state(window))
    )
    return window


def _window_locked(window: MaintenanceWindow) -> MaintenanceWindow:
    return MaintenanceWindow.objects.select_for_update(of=("self",)).select_related("team").get(pk=window.pk)


def _window_save(*, window: MaintenanceWindow, before: dict[str, Any], actor) -> MaintenanceWindow:
    window.save(update_fields=["integration", "start", "end", "reason"])
    changes = diff(before, _window_state(window))
    if changes:
        audit_record(actor=actor, team=window.team, action=AuditEntry.Action.UPDATE, obj=window, changes=changes)
    return window


@transaction.atomic
def maintenance_window_update(
    *,
    window: MaintenanceWindow,
    actor,
    start: datetime,
    end: datetime,
    integration: Integration | None,
    reason: str,
) -> MaintenanceWindow:
    window = _window_locked(window)
    maintenance_window_check(team=window.team, start=start, end=end, integration=integration)
    before = _window_state(window)
    window.start, window.end, window.integration, window.reason = start, end, integration, reason
    return _window_save(window=window, before=before, actor=actor)


@transaction.atomic
def maintenance_window_end(*, window: MaintenanceWindow, actor, now: datetime | None = None) -> MaintenanceWindow:
    """End a running window now, so alerts page again. A window already over is left as it is; one that
    has not started cannot end (delete it instead)."""
    now = now or timezone.now()
    window = _window_locked(window)
    if window.end <= now:
        return window
    if window.start >= now:
        raise ValidationError({"end": ["This window has not started yet; delete it instead."]})
    before = _window_state(window)
    window.end = now
    return _window_save(window=window, before=before, actor=actor)


@transaction.atomic
def maintenance_window_delete(*, window: MaintenanceWindow, actor) -> None:
    window = _window_locked(window)
    audit_record(
        actor=actor,
        team=window.team,
        action=AuditEntry.Action.DELETE,
        obj=window,
        changes=diff(_window_state(window), {}),
    )
    window.delete()


# --- heartbeats ----------------------------------------------------------------------------------


def _heartbeat_state(heartbeat: Heartbeat) -> dict[str, Any]:
    return {
        "name": heartbeat.name,
        "integration": heartbeat.integration_id,
        "interval": heartbeat.interval,
        "grace": heartbeat.grace,
        "enabled": heartbeat.enabled,
    }


def heartbeat_check(
    *,
    team: Team,
    name: str,
    interval: timedelta,
    grace: timedelta,
    integration: Integration | None,
    heartbeat: Heartbeat | None = None,
) -> str:
    """Validate a heartbeat's fields (also used by the admin form); returns the cleaned name."""
    if not HEARTBEAT_INTERVAL_MIN <= interval <= HEARTBEAT_INTERVAL_MAX:
        raise ValidationError({"interval": ["The interval must be between 30 seconds and 31 days."]})
    if not timedelta(0) <= grace <= HEARTBEAT_GRACE_MAX:
        raise ValidationError({"grace": ["The grace must be between 0 and 7 days."]})
    _integration_of_team_check(team=team, integration=integration)
    return _name_check(model=Heartbeat, team=team, name=name, exclude_pk=heartbeat.pk if heartbeat else None)


@transaction.atomic
def heartbeat_create(
    *,
    team: Team,
    name: str,
    interval: timedelta,
    actor,
    grace: timedelta = timedelta(minutes=1),
    enabled: bool = True,
    integration: Integration | None = None,
    now: datetime | None = None,
) -> Heartbeat:
    name = heartbeat_check(team=team, name=name, interval=interval, grace=grace, integration=integration)
    heartbeat = Heartbeat.objects.create(
        team=team,
        name=name,
        interval=interval,
        grace=grace,
        enabled=enabled,
        integration=integration,
        created_at=now or timezone.now(),
    )
    audit_record(
        actor=actor,
        team=team,
        action=AuditEntry.Action.CREATE,
        obj=heartbeat,
        changes=diff({}, _heartbeat_state(heartbeat)),
    )
    return heartbeat


def _heartbeat_locked(heartbeat: Heartbeat) -> Heartbeat:
    return Heartbeat.objects.select_for_update(of=("self",)).select_related("team").get(pk=heartbeat.pk)


@transaction.atomic
def heartbeat_update(
    *,
    heartbeat: Heartbeat,
    actor,
    name: str,
    interval: timedelta,
    grace: timedelta,
    enabled: bool,
    integration: Integration | None,
) -> Heartbeat:
    heartbeat = _heartbeat_locked(heartbeat)
    name = heartbeat_check(
        team=heartbeat.team, name=name, interval=interval, grace=grace, integration=integration, heartbeat=heartbeat
    )
    before = _heartbeat_state(heartbeat)
    heartbeat.name, heartbeat.interval, heartbeat.grace = name, interval, grace
    heartbeat.enabled, heartbeat.integration = enabled, integration
    heartbeat.save(update_fields=["name", "interval", "grace", "enabled", "integration"])
    changes = diff(before, _heartbeat_state(heartbeat))
    if changes:
        audit_record(actor=actor, team=heartbeat.team, action=AuditEntry.Action.UPDATE, obj=heartbeat, changes=changes)
    return heartbeat


@transaction.atomic
def heartbeat_token_rotate(*, heartbeat: Heartbeat, actor) -> Heartbeat:
    """A new ping token; the old URL stops working at once."""
    heartbeat = _heartbeat_locked(heartbeat)
    heartbeat.token = integration_key_new()
    heartbeat.save(update_fields=["token"])
    audit_record(
        actor=actor,
        team=heartbeat.team,
        action=AuditEntry.Action.UPDATE,
        obj=heartbeat,
        changes={"token": SECRET_ROTATED},
    )
    return heartbeat


@transaction.atomic
def heartbeat_delete(*, heartbeat: Heartbeat, actor) -> None:
    heartbeat = _heartbeat_locked(heartbeat)
    audit_record(
        actor=actor,
        team=heartbeat.team,
        action=AuditEntry.Action.DELETE,
        obj=heartbeat,
        changes=diff(_heartbeat_state(heartbeat), {}),
    )
    heartbeat.delete()
