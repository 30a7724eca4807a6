"""The durable intake inbox: accept an event with one INSERT; `escalations.intake.drain` applies it later.

PagerDuty's Events API works this way, and so does ours: the HTTP request validates the event in
pure Python, then `inbox_accept` finds the integration and stores the raw event in ONE autocommitted
statement (`INSERT … SELECT … FROM integration WHERE key = … AND enabled RETURNING id`). Its commit
is the durability point: the 202 means "stored", never "seen". When the database cannot take the
INSERT (down, restarting), `InboxUnavailable`: the endpoints answer 503 with Retry-After.

Drains are started by kicks (at most one Celery message per debounce window across all web
processes, see `inbox_kick`) and by a beat job every second, the safety net for a lost message, a dead
worker or a restarted Redis.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import uuid
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DataError,
    InterfaceError,
    InternalError,
    OperationalError,
    connections,
    transaction,
)

from escalations.intake.group_commit import GroupCommit
from escalations.intake.parsers import EventInvalid
from escalations.models import InboxEvent, Integration

logger = logging.getLogger(__name__)


Kind = InboxEvent.Kind


INVALID_KEY = "Invalid routing key"


DISABLED = "This integration is disabled; enable it in Backstop to accept events"


class InboxRefused(Exception):
    """No enabled integration of this kind has the key: `reason` is "unknown" or "disabled"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InboxUnavailable(Exception):
    """The event could not be stored (the database is down, restarting or refusing writes): the
    sender must be told to retry (503 + Retry-After), never 202 (nothing was stored) nor 500."""


# Errors that mean "the database cannot take the INSERT now", not "this event is bad".
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, InternalError)


# ------------------------------------------------------------------------------------ accept


_INSERT = (
    f"INSERT INTO {InboxEvent._meta.db_table}"
    " (integration_id, kind, action, dedup_key, payload, received_at, error, request_id, outcome)"
    f" SELECT id, %s, %s, %s, {{payload}}, %s, '', %s, '' FROM {Integration._meta.db_table}"
    " WHERE key = %s AND kind = %s AND enabled RETURNING id"
)


_INSERT_PG = _INSERT.format(payload="%s::jsonb")


def inbox_accept(
    *,
    key: str,
    integration_kind: str,
    kind: str,
    action: str,
    dedup_key: str,
    payload: str,
    now: datetime,
    request_id: uuid.UUID | None = None,
) -> int:
    """Store one validated event for the enabled integration with `key`, in one statement.

    `payload` is the event as JSON text (stored as received). Raises InboxRefused when no enabled
    integration of `integration_kind` has the key, and EventInvalid when the database refuses the JSON
    (NUL characters, NaN or lone surrogates, which Python's parser accepts). Must run in autocommit:
    when it returns, the event is committed. `request_id`: the id an Opsgenie sender was given.
    """
    db = connections[DEFAULT_DB_ALIAS]  # `connection` is a proxy: every attribute looks it up again
    request = InboxEvent._meta.get_field("request_id").get_db_prep_value(request_id, db)
    params = [kind, action, dedup_key, payload, db.ops.adapt_datetimefield_value(now), request, key, integration_kind]
    try:
        if db.vendor == "postgresql" and not db.in_atomic_block and not db.queries_logged and not db.execute_wrappers:
            # The web request's case: autocommit, and nobody watching the queries (Django's query log
            # and execute wrappers only see statements sent through its own cursors).
            row = accept_group.submit(params, functools.partial(_insert_batch, db))
        else:
            # Inside a caller's transaction (tests), a savepoint keeps a refused payload from aborting it.
            sql = _INSERT_PG if db.vendor == "postgresql" else _INSERT.format(payload="%s")
            savepoint = transaction.atomic() if db.in_atomic_block else contextlib.nullcontext()
            with savepoint, db.cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
    except DataError:
        raise EventInvalid(
            ["The event contains values that cannot be stored (NUL characters, NaN or unpaired surrogates)"]
        ) from None
    except UNAVAILABLE_ERRORS as exc:
        # A lost connection, a server restarting or in recovery: nothing was committed. The broken
        # connection is closed at the end of the request (Django's errors_occurred check).
        raise InboxUnavailable(
            str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        ) from exc
    if row is None:
        try:
            enabled = (
                Integration.objects.filter(key=key, kind=integration_kind).values_list("enabled", flat=True).first()
            )
        except UNAVAILABLE_ERRORS as exc:
            raise InboxUnavailable(exc.__class__.__name__) from exc
        raise InboxRefused("unknown" if enabled is None else "disabled")
    return row[0]


# Concurrent accepts of this process share a statement (escalations.intake.group_commit).
accept_group: GroupCommit[list, tuple | None] = GroupCommit()

# Many events in one statement: each row's integration is looked up as in _INSERT (rows with no enabled
# integration are left out), ids are drawn in arrival order, and the statement answers (ordinal, id)
# for the rows it stored. A data-modifying WITH runs to completion whether or not it is read.
_INSERT_MANY = (
    "WITH batch AS MATERIALIZED ("
    " SELECT nextval({sequence}::regclass) AS id, s.* FROM ("
    "  SELECT v.n, i.id AS integration_id, v.kind, v.action, v.dedup_key, v.payload, v.received_at, v.request_id"
    "  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::uuid[], %s::text[],"
    "   %s::text[]) WITH ORDINALITY AS v(kind, action, dedup_key, payload, received_at, request_id, key,"
    "   integration_kind, n)"
    f"  JOIN {Integration._meta.db_table} i ON i.key = v.key AND i.kind = v.integration_kind AND i.enabled"
    "  ORDER BY v.n) s"
    "), stored AS ("
    f" INSERT INTO {InboxEvent._meta.db_table}"
    " (id, integration_id, kind, action, dedup_key, payload, received_at, error, request_id, outcome)"
    " SELECT id, integration_id, kind, action, dedup_key, payload::jsonb, received_at, '', request_id, ''"
    " FROM batch ORDER BY n"
    ") SELECT n, id FROM batch"
)


def _insert_batch(db, batch: list[list]) -> list[tuple | None | BaseException]:
    """Store a group-commit batch on `db` (the leader's connection): one row, the one-row statement;
    more, one statement for all. If the database refuses one payload (DataError), each is stored alone,
    so only its own sender gets the 400."""
    if len(batch) == 1:
        return [_insert_prepared(db, batch[0])]
    try:
        return _insert_many(db, batch)
    except DataError:
        outcomes: list[tuple | None | BaseException] = []
        for params in batch:
            try:
                outcomes.append(_insert_prepared(db, params))
            except DataError as exc:
                outcomes.append(exc)
        return outcomes


def _insert_many(db, batch: list[list]) -> list[tuple | None | BaseException]:
    columns = [[params[i] for params in batch] for i in range(len(batch[0]))]
    sql = db.__dict__.get("_inbox_insert_many")
    if sql is None:
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [InboxEvent._meta.db_table])
            sequence = cursor.fetchone()[0]
        literal = "'" + sequence.replace("'", "''") + "'"
        sql = db._inbox_insert_many = _INSERT_MANY.format(sequence=literal)
    with db.wrap_database_errors:
        cursor = _inbox_cursor(db)
        cursor.execute(sql, columns, prepare=True)
        ids: dict[int, int] = dict(cursor.fetchall())
    return [(ids[n],) if n in ids else None for n in range(1, len(batch) + 1)]


def _inbox_cursor(db) -> psycopg.Cursor:
    """One psycopg cursor per connection for the prepared INSERTs (call inside wrap_database_errors)."""
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    cursor = db.__dict__.get("_inbox_cursor")
    if cursor is None or cursor.closed or cursor.connection is not db.connection:
        cursor = db._inbox_cursor = psycopg.Cursor(db.connection)
    return cursor


def _insert_prepared(db, params: list) -> tuple | None:
    """The INSERT as a server-side prepared statement on Django's own connection: PostgreSQL plans it
    once per connection, and psycopg sends the parameters apart instead of quoting the payload into
    the SQL text (Django's cursors bind on the client). One psycopg cursor per connection is kept for
    it. Errors are Django's, as through its cursor (DataError, and a broken connection is closed at
    the end of the request)."""
    with db.wrap_database_errors:
        cursor = _inbox_cursor(db)
        cursor.execute(_INSERT_PG, params, prepare=True)
        return cursor.fetchone()


# ------------------------------------------------------------------------------------ retention


def inbox_purge(*, now: datetime, chunk: int = 10_000) -> int:
    """Delete events applied longer ago than BACKSTOP_INBOX_RETENTION (set-aside failures are kept)."""
    cutoff = now - settings.BACKSTOP_INBOX_RETENTION
    deleted = 0
    while True:
        ids = list(
            InboxEvent.objects.filter(processed_at__lt=cutoff, error="")
            .order_by("processed_at")
            .values_list("id", flat=True)[:chunk]
        )
        if not ids:
            return deleted
        deleted += InboxEvent.objects.filter(pk__in=ids).delete()[0]


# ------------------------------------------------------------------------------------ helpers


def payload_text(body: bytes, data: Any) -> str:
    """The event as JSON text to store: the received bytes when they are plain UTF-8, else re-encoded."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return json.dumps(data)


def dedup_key_new() -> str:
    return uuid.uuid4().hex
