"""The intake drain: apply the inbox's pending events in batches, in arrival order.

`intake_events_process` applies pending rows in id order through the intake and incident services,
and marks them processed in the same transaction as their effects, so a crash re-applies nothing and
loses nothing. One drainer runs at a time (a PostgreSQL advisory lock per batch; a drainer that finds
it taken kicks and returns instead of waiting, see `inbox_drain`): events of one dedup key are never
applied out of order, and on two cores parallel drainers would only contend for the same incident
rows. Within a batch, repeated triggers of an incident that is open (and row-locked by this
transaction) are collapsed into one counter update plus bulk-inserted Alert and timeline rows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from config import locks
from escalations.incidents import selectors as incidents_selectors
from escalations.incidents import services
from escalations.intake import apply as intake_apply
from escalations.intake import kick, parsers
from escalations.intake.apply import VIA
from escalations.models import Alert, ChangeEvent, InboxEvent, Incident, Integration, MaintenanceWindow, TimelineEvent

logger = logging.getLogger(__name__)

Kind = InboxEvent.Kind


class _DrainBusy(Exception):
    """Another drainer holds the drain lock."""


def inbox_drain(*, now: datetime | None = None, limit: int | None = None, max_seconds: float = 20.0) -> int:
    """Apply pending events batch after batch until none are left (or `max_seconds` have passed).

    When another drainer holds the lock this one does not wait for it: a waiting drainer held a
    worker process for as long as the other drained (up to `max_seconds`), and under sustained intake
    both processes of the worker ended up draining or waiting while deliveries queued behind them
    (bench/soak.py found it). It kicks instead (`kick.inbox_kick`: at most one drain task per
    debounce window, due after this moment), so a drain that takes the lock after the events this
    drainer was started for still follows; that one applies them, or finds the lock taken and kicks
    again.
    """
    limit = limit or settings.BACKSTOP_INBOX_BATCH
    deadline = time.monotonic() + max_seconds
    total = 0
    while True:
        try:
            done = intake_events_process(now=now or timezone.now(), limit=limit)
        except _DrainBusy:
            kick.inbox_kick()
            return total
        total += done
        if done < limit or time.monotonic() > deadline:
            return total


def intake_events_process(*, now: datetime, limit: int) -> int:
    """Apply up to `limit` pending events in arrival order, in one transaction. Returns how many.

    If the batch fails, it is retried one event at a time, and an event that fails alone is set
    aside (processed, with its error) so one bad row cannot block the inbox. Lost connections are
    not set aside: they raise, and the next drain retries everything.
    """
    try:
        with transaction.atomic():
            rows = _claim(limit)
            if not rows:
                return 0
            batch = _Batch(rows)
            batch.apply()
            _mark(rows, now)
            _outcomes_record(batch.outcomes)
            return len(rows)
    except (OperationalError, InterfaceError, _DrainBusy):
        raise
    except Exception:
        logger.exception("Intake inbox batch failed; applying its events one at a time")
    return _process_one_by_one(now=now, limit=limit)


def _process_one_by_one(*, now: datetime, limit: int) -> int:
    with transaction.atomic():
        rows = _claim(limit)
        failed: dict[int, str] = {}
        outcomes: dict[int, tuple[int | None, str]] = {}
        for row in rows:
            try:
                with transaction.atomic():
                    batch = _Batch([row])
                    batch.apply()
                    outcomes.update(batch.outcomes)
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                logger.exception("Intake inbox event %s could not be applied; set aside", row.id)
                failed[row.id] = repr(exc)[:2000]
        _mark([r for r in rows if r.id not in failed], now)
        _outcomes_record(outcomes)
        for row_id, error in failed.items():
            InboxEvent.objects.filter(pk=row_id).update(processed_at=now, error=error)
        return len(rows)


@dataclass(frozen=True)
class _Row:
    id: int
    integration_id: int
    kind: str
    action: str
    dedup_key: str
    text: str  # the event as stored (JSON), copied as is onto its Alert row
    received_at: datetime
    payload: Any  # the same, parsed


def _claim(limit: int) -> list[_Row]:
    """The oldest pending rows, under the drain lock (held until this transaction ends). Raises
    _DrainBusy when another drainer holds it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [locks.INBOX_DRAIN])
            if not cursor.fetchone()[0]:
                raise _DrainBusy
    # SQLite (the local demo) needs no lock: its transactions take the database's write lock.
    rows = (
        InboxEvent.objects.filter(processed_at__isnull=True)
        .order_by("id")
        .annotate(text=Cast("payload", TextField()))
        .values_list("id", "integration_id", "kind", "action", "dedup_key", "text", "received_at")[:limit]
    )
    return [_Row(*row, json.loads(row[5])) for row in rows]


def _mark(rows: list[_Row], now: datetime) -> None:
    if rows:
        InboxEvent.objects.filter(pk__in=[r.id for r in rows]).update(processed_at=now)


def _outcomes_record(outcomes: dict[int, tuple[int | None, str]]) -> None:
    # Opsgenie requests only (rare next to PagerDuty's): what they did, for their status endpoint.
    for row_id, (incident_id, outcome) in outcomes.items():
        InboxEvent.objects.filter(pk=row_id).update(incident_id=incident_id, outcome=outcome)


class _Batch:
    """One drain batch: applies rows in order, collapsing repeated triggers of an open incident.

    `open` caches, per (team, dedup key), the open incident this transaction has locked (through the
    trigger's UPDATE … RETURNING, its INSERT, or an acknowledge's SELECT … FOR UPDATE), or None once
    it was resolved here. Nobody else can resolve a locked incident before this batch commits, so a
    repeated trigger of a cached open incident only needs its counter, Alert and timeline rows, which
    are written in bulk at the end.
    """

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        self.integrations = Integration.objects.select_related("team__escalation_policy", "policy").in_bulk(
            {r.integration_id for r in rows}
        )
        self.windows = self._windows()
        self.open: dict[tuple[int, str], Incident | _Locked | None] = self._open_locked()
        self.counts: dict[int, list] = {}  # incident id -> [extra alerts, latest time]
        self.alerts: list[tuple] = []
        self.timeline: list[tuple] = []
        self.changes: list[ChangeEvent] = []
        self.outcomes: dict[int, tuple[int | None, str]] = {}  # Opsgenie rows: (incident id, status text)

    def _windows(self) -> list[tuple[int, int | None, datetime, datetime]]:
        team_ids = {i.team_id for i in self.integrations.values()}
        times = [r.received_at for r in self.rows]
        return list(
            MaintenanceWindow.objects.filter(
                team_id__in=team_ids, start__lte=max(times), end__gt=min(times)
            ).values_list("team_id", "integration_id", "start", "end")
        )

    def _open_locked(self) -> dict[tuple[int, str], _Locked]:
        """Lock, in one query and in id order, the open incidents of the batch's PagerDuty and generic
        dedup keys: every trigger of them in this batch is then just a counted alert. Only their id
        and status are read: a repeated trigger needs no more, and an acknowledge or resolve loads
        its incident when it comes (`_full`)."""
        pairs = {
            (self.integrations[r.integration_id].team_id, r.dedup_key)
            for r in self.rows
            if r.dedup_key
            and (r.kind in (Kind.PAGERDUTY, Kind.GENERIC) or (r.kind == Kind.OPSGENIE and r.action == "trigger"))
        }
        if not pairs:
            return {}
        candidates = (
            Incident.objects.select_for_update(of=("self",))
            .filter(team_id__in={t for t, _ in pairs}, dedup_key__in={k for _, k in pairs})
            .exclude(status=Incident.Status.RESOLVED)
            .order_by("id")
            .values_list("id", "team_id", "dedup_key", "status", "urgency")
        )
        return {
            (team, key): _Locked(pk, status, urgency)
            for pk, team, key, status, urgency in candidates
            if (team, key) in pairs
        }

    def suppressed(self, integration: Integration, at: datetime) -> bool:
        """Was a maintenance window of the team (or of this integration) open when the event arrived?"""
        return any(
            team_id == integration.team_id and (scope is None or scope == integration.pk) and start <= at < end
            for team_id, scope, start, end in self.windows
        )

    def apply(self) -> None:
        for row in self.rows:
            integration = self.integrations[row.integration_id]
            if row.kind == Kind.PAGERDUTY:
                self.pagerduty(row, integration)
            elif row.kind == Kind.GENERIC:
                self.generic(row, integration)
            elif row.kind == Kind.OPSGENIE:
                self.opsgenie(row, integration)
            elif row.kind == Kind.CHANGE:
                change = parsers.pagerduty_change_parse(row.payload)
                self.changes.append(
                    intake_apply.change_event_build(integration=integration, change=change, now=row.received_at)
                )
            elif row.kind == Kind.ALERTMANAGER:
                message = parsers.alertmanager_parse(row.payload)
                # The Alertmanager path keeps its own per-fingerprint bookkeeping; forget what we knew.
                self.open.pop((integration.team_id, message.dedup_key), None)
                intake_apply.alertmanager_apply(
                    integration=integration,
                    message=message,
                    now=row.received_at,
                    suppressed=self.suppressed(integration, row.received_at),
                )
            else:
                raise ValueError(f"unknown inbox event kind {row.kind!r}")
        self.flush()

    # -- PagerDuty and generic share the dedup semantics -----------------------------------------

    def pagerduty(self, row: _Row, integration: Integration) -> None:
        event = parsers.pagerduty_event_parse(row.payload)
        if event.action == "trigger":
            # The incident's fields are built only if the trigger opens one (a repeat just counts).
            self.trigger(
                row,
                integration,
                title=event.summary,
                summary=event.summary,
                urgency=parsers.urgency_of(rule=integration.urgency_rule, severity=event.severity),
                opening=lambda: {
                    "details": parsers.pagerduty_details(event),
                    "severity": event.severity,
                    "payload": {"integration": integration.pk, "pagerduty": row.payload},
                    "links": parsers.pagerduty_links(event),
                },
            )
        else:
            self.action(row, integration, summary=parsers.summary_of(row.payload))

    def generic(self, row: _Row, integration: Integration) -> None:
        event = parsers.generic_parse(row.payload)
        if event.action == "trigger":
            self.trigger(
                row,
                integration,
                title=event.summary,
                summary=event.summary,
                urgency=parsers.urgency_of(
                    rule=integration.urgency_rule, severity=event.severity, urgency=event.urgency
                ),
                opening=lambda: {
                    "details": event.details,
                    "severity": event.severity,
                    "payload": {"integration": integration.pk, "generic": row.payload},
                },
            )
        else:
            self.action(row, integration, summary=event.summary)

    def trigger(
        self, row: _Row, integration: Integration, *, title: str, summary: str, urgency: str, opening
    ) -> Incident | _Locked:
        at = row.received_at
        suppressed = self.suppressed(integration, at)
        cache_key = (integration.team_id, row.dedup_key)
        incident = self.open.get(cache_key)
        if incident is not None and incident.status != Incident.Status.RESOLVED:
            # What incident_trigger does for a repeat (services._alert_append), in bulk at flush.
            count = self.counts.setdefault(incident.pk, [0, at])
            count[0] += 1
            count[1] = max(count[1], at)
            self.timeline.append(
                (
                    incident.pk,
                    at,
                    str(TimelineEvent.Kind.ALERT),
                    str(VIA),
                    f"Another alert for this incident: {(title or '').strip()[:1024] or '(no summary)'}",
                    f'{{"integration": {integration.pk}}}',
                )
            )
            if urgency == Incident.Urgency.HIGH and incident.urgency == Incident.Urgency.LOW:
                # Rare (a worse alert for a low-urgency incident): the service, under the lock we hold.
                services.incident_urgency_raise(
                    incident=Incident(pk=incident.pk),
                    via=VIA,
                    reason=f"A new alert with high urgency: {(title or '').strip()[:1024] or '(no summary)'}",
                    now=at,
                )
                self.open[cache_key] = _Locked(incident.pk, incident.status, Incident.Urgency.HIGH)
        else:
            result, suppressed = intake_apply._trigger(
                integration=integration,
                now=at,
                suppressed=suppressed,
                title=title,
                dedup_key=row.dedup_key,
                urgency=urgency,
                **opening(),
            )
            incident = result.incident
            self.open[cache_key] = incident
        self.alert(row, integration, incident, Alert.Status.SUPPRESSED if suppressed else Alert.Status.FIRING, summary)
        return incident

    # -- Opsgenie ----------------------------------------------------------------------------------

    def opsgenie(self, row: _Row, integration: Integration) -> None:
        """A stored Opsgenie request: {"alert": body} for a create, else {"verb", "identifier",
        "identifierType", "body"}. Its outcome is kept on the inbox row for the status endpoint."""
        stored = row.payload
        if "alert" in stored:
            alert = parsers.opsgenie_alert_parse(stored["alert"])
            incident = self.trigger(
                row,
                integration,
                title=alert.message,
                summary=alert.message,
                urgency=parsers.urgency_of(rule=integration.urgency_rule, severity=alert.severity),
                opening=lambda: {
                    "details": parsers.opsgenie_details(alert),
                    "severity": alert.severity,
                    "payload": {"integration": integration.pk, "opsgenie": stored["alert"]},
                },
            )
            if alert.note:
                self.note(incident.pk, alert.note, alert.user, alert.source, row.received_at)
            self.outcomes[row.id] = (incident.pk, "Created alert")
            return
        request = parsers.opsgenie_action_parse(
            verb=stored["verb"],
            identifier=stored["identifier"],
            identifier_type=stored["identifierType"],
            body=stored["body"],
        )
        incident = self.opsgenie_target(integration, request)
        if incident is None:
            self.outcomes[row.id] = (None, "Alert does not exist")
            if request.action != "note":
                self.alert(row, integration, None, Alert.Status.IGNORED, "")
            return
        # Whatever this batch knew about the incident's key is stale after this: forget it.
        self.open.pop((integration.team_id, incident.dedup_key), None)
        if request.action == "note":
            self.note(incident.pk, request.note, request.user, request.source, row.received_at)
            self.outcomes[row.id] = (incident.pk, "Added note")
            return
        if incident.status == Incident.Status.RESOLVED:
            status, outcome = Alert.Status.IGNORED, "Alert is already closed"
        else:
            status = intake_apply.action_apply(incident=incident, action=request.action, now=row.received_at)
            outcome = "Closed alert" if request.action == "resolve" else "Acknowledged alert"
        if request.note:
            self.note(incident.pk, request.note, request.user, request.source, row.received_at)
        self.outcomes[row.id] = (incident.pk, outcome)
        self.alert(row, integration, incident, status, incident.title)

    def opsgenie_target(self, integration: Integration, request: parsers.OpsgenieAction) -> Incident | None:
        """The incident an Opsgenie identifier names, within the integration's team. identifierType
        alias: the open incident of that dedup key. id (and tiny): the incident with that number, else,
        as an alias (senders that kept Opsgenie's alert id have only our alias to offer)."""
        team = integration.team
        if request.identifier_type != "alias" and request.identifier.isdigit():
            found = Incident.objects.filter(pk=int(request.identifier), team=team).first()
            if found is not None:
                return found
        key = parsers.opsgenie_dedup_key(request.identifier)
        return incidents_selectors.incident_open_get(team=team, dedup_key=key)

    def note(self, incident_id: int, note: str, user: str, source: str, at: datetime) -> None:
        if not note.strip():
            return
        services.incident_note_add(
            incident=Incident.objects.get(pk=incident_id),
            by=None,
            text=parsers.opsgenie_note_text(note=note, user=user, source=source),
            via=VIA,
            now=at,
        )

    def action(self, row: _Row, integration: Integration, *, summary: str) -> None:
        cache_key = (integration.team_id, row.dedup_key)
        incident = self.open.get(cache_key)
        if incident is None or incident.status == Incident.Status.RESOLVED:
            # Not open when the batch began (or resolved since): another process may have opened
            # one meanwhile, so ask, as the single-event path does.
            incident = incidents_selectors.incident_open_get(team=integration.team, dedup_key=row.dedup_key)
        elif isinstance(incident, _Locked):
            incident = Incident.objects.get(pk=incident.pk)  # locked by this transaction already
        status = intake_apply.action_apply(incident=incident, action=row.action, now=row.received_at)
        # After acknowledge/resolve the row is locked by this transaction (or resolved): cacheable.
        self.open[cache_key] = (
            incident if incident is not None and incident.status != Incident.Status.RESOLVED else None
        )
        self.alert(row, integration, incident, status, summary)

    def alert(self, row: _Row, integration: Integration, incident: Incident | None, status: str, summary: str) -> None:
        self.alerts.append(
            (
                integration.pk,
                incident.pk if incident is not None else None,
                row.received_at,
                row.action,
                row.dedup_key,
                "",
                str(status),
                summary[: parsers.SUMMARY_MAX],
                row.text,
            )
        )

    def flush(self) -> None:
        if self.counts:
            _counts_add(self.counts)
        _insert_rows(TimelineEvent, _TIMELINE_FIELDS, self.timeline)
        _insert_rows(Alert, _ALERT_FIELDS, self.alerts)
        ChangeEvent.objects.bulk_create(self.changes, batch_size=1000)


@dataclass(frozen=True)
class _Locked:
    """An open incident this batch holds the row lock of, known by id and status only."""

    pk: int
    status: str
    urgency: str


_COUNTS_SQL = (
    f"UPDATE {Incident._meta.db_table} AS i SET alert_count = i.alert_count + c.n,"
    " updated_at = CASE WHEN i.updated_at < c.at THEN c.at ELSE i.updated_at END"
    " FROM unnest(%s::bigint[], %s::integer[], %s::timestamptz[]) AS c(id, n, at) WHERE i.id = c.id"
)


def _counts_add(counts: dict[int, list]) -> None:
    """Add repeated alerts to their incidents' counters ({incident id: [alerts, latest time]}).
    PostgreSQL: one statement for the whole batch (an UPDATE per incident was parsed and planned
    once per incident: most of the database's share of a batch)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ids, ns, ats = zip(*((pk, n, at) for pk, (n, at) in counts.items()), strict=True)
            cursor.execute(_COUNTS_SQL, [list(ids), list(ns), list(ats)])
            return
        moment = connection.ops.adapt_datetimefield_value
        cursor.executemany(
            f"UPDATE {Incident._meta.db_table} SET alert_count = alert_count + %s,"
            " updated_at = CASE WHEN updated_at < %s THEN %s ELSE updated_at END WHERE id = %s",
            [(n, moment(at), moment(at), pk) for pk, (n, at) in counts.items()],
        )


# Rows as tuples of these columns (JSON columns as JSON text): written with COPY on PostgreSQL.
_TIMELINE_FIELDS = ("incident_id", "at", "kind", "via", "message", "data")


_ALERT_FIELDS = (
    "integration_id",
    "incident_id",
    "received_at",
    "action",
    "dedup_key",
    "fingerprint",
    "status",
    "summary",
    "payload",
)


def _insert_rows(model, fields: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert many rows. PostgreSQL: one COPY, which costs a fraction of bulk_create's statement
    building and literal quoting (most of the drain's CPU for a batch of repeated alerts)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {model._meta.db_table} ({', '.join(fields)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    json_fields = {f.attname for f in model._meta.concrete_fields if f.get_internal_type() == "JSONField"}
    model.objects.bulk_create(
        [
            model(**{f: json.loads(v) if f in json_fields else v for f, v in zip(fields, row, strict=True)})
            for row in rows
        ],
        batch_size=500,
    )
