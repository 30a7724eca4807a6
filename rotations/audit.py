"""The one audit helper: every write in the portal, the API and the admin records its change here."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import models

from rotations.models import (
    AuditEntry,
    Team,
)

# --------------------------------------------------------------------------- audit


def _jsonable(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """{field: [old, new]} for the fields whose JSON form changed."""
    out = {}
    for key in sorted(set(before) | set(after)):
        old, new = _jsonable(before.get(key)), _jsonable(after.get(key))
        if old != new:
            out[key] = [old, new]
    return out


def audit_record(*, actor, team: Team | None, action: str, obj: models.Model, changes: dict[str, list]) -> AuditEntry:
    """Append one audit row. `changes` is {field: [old, new]} (JSON-able; model instances become ids)."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        team=team,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes={k: _jsonable(v) for k, v in changes.items()},
    )
