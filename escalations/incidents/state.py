"""Engine state of an incident row: read it, store it, lock and refresh the row."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from escalations import engine
from escalations.models import Incident


def _spec_of(incident: Incident) -> engine.PolicySpec | None:
    if not incident.policy_snapshot:
        return None
    return engine.PolicySpec.from_json(incident.policy_snapshot)


def _state_of(incident: Incident) -> engine.EngineState:
    return engine.EngineState(
        status=engine.Status(incident.status),
        cycle=incident.cycle,
        step=incident.step,
        loop=incident.loop,
        next_action_at=incident.next_action_at,
        triggered_at=incident.triggered_at,
        acknowledged_at=incident.acknowledged_at,
        snoozed_until=incident.snoozed_until,
        exhausted=incident.exhausted,
        urgency=engine.Urgency(incident.urgency),
        deferred_until=incident.deferred_until,
    )


ENGINE_FIELDS = [
    "status",
    "cycle",
    "step",
    "loop",
    "next_action_at",
    "triggered_at",
    "acknowledged_at",
    "snoozed_until",
    "exhausted",
    "urgency",
    "deferred_until",
]


def _store_state(incident: Incident, state: engine.EngineState) -> None:
    incident.status = str(state.status)
    incident.cycle = state.cycle
    incident.step = state.step
    incident.loop = state.loop
    incident.next_action_at = state.next_action_at
    incident.triggered_at = state.triggered_at
    incident.acknowledged_at = state.acknowledged_at
    incident.snoozed_until = state.snoozed_until
    incident.exhausted = state.exhausted
    incident.urgency = str(state.urgency)
    incident.deferred_until = state.deferred_until


_INCIDENT_UPDATE_SQL = (
    "UPDATE escalations_incident SET status = %s, cycle = %s, step = %s, loop = %s, next_action_at = %s, "
    "triggered_at = %s, acknowledged_at = %s, snoozed_until = %s, exhausted = %s, urgency = %s, deferred_until = %s, "
    "resolved_at = %s, "
    "resolved_by_id = %s, acknowledged_by_id = %s, updated_at = %s WHERE id = %s"
)


def _incidents_store(incidents: Sequence[Incident]) -> None:
    """Write the engine state of many incidents. One prepared statement executed many times: Django's
    bulk_update builds a CASE expression per field and row, which costs seconds for a large batch."""
    moment = connection.ops.adapt_datetimefield_value  # the backend's own encoding (SQLite stores text)
    rows = [
        (
            i.status,
            i.cycle,
            i.step,
            i.loop,
            moment(i.next_action_at),
            moment(i.triggered_at),
            moment(i.acknowledged_at),
            moment(i.snoozed_until),
            i.exhausted,
            i.urgency,
            moment(i.deferred_until),
            moment(i.resolved_at),
            i.resolved_by_id,
            i.acknowledged_by_id,
            moment(i.updated_at),
            i.pk,
        )
        for i in incidents
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_INCIDENT_UPDATE_SQL, rows)


# -------------------------------------------------------------------------------- actions


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update(of=("self",)).select_related("team").get(pk=incident.pk)


def _refresh(target: Incident, source: Incident) -> None:
    for field in [*ENGINE_FIELDS, "acknowledged_by_id", "resolved_at", "resolved_by_id"]:
        setattr(target, field, getattr(source, field))
