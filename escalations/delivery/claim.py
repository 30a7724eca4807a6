"""Claiming due pages for sending: cancel the closed, hold back the throttled, bundle per destination."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from config import locks
from escalations.delivery.record import DeliveryOutcome, _moved_due
from escalations.models import Incident, Page
from escalations.monitoring import metrics
from portal.models import NotificationRule


def _throttle(channel: str) -> tuple[int, timedelta]:
    conf = settings.BACKSTOP_PAGE_THROTTLE.get(channel) or {"count": 1_000_000, "seconds": 1}
    return int(conf["count"]), timedelta(seconds=conf["seconds"])


def _open_incident() -> Exists:
    # Correlated on the page's own incident: one primary-key probe per page. `incident_id [NOT] IN
    # (SELECT … every open incident)` made PostgreSQL hash all open incidents for each delivery
    # (5 ms of its CPU per page with 10,000 open incidents).
    return Exists(
        Incident.objects.filter(pk=OuterRef("incident_id"), status=Incident.Status.TRIGGERED, suppressed=False)
    )


def _sendable() -> Q:
    """The page's incident is still triggered and the rule it carries out (if any) still exists:
    a rule deleted after its page was written, however it was deleted, never pages."""
    rule_kept = Q(rule__isnull=True) | Q(Exists(NotificationRule.objects.filter(pk=OuterRef("rule_id"))))
    return Q(_open_incident()) & rule_kept


def _destinations(keys: Iterable[tuple[str, str]]) -> Q:
    q = Q(pk__in=[])
    for channel, destination in keys:
        q |= Q(channel=channel, destination=destination)
    return q


def _lock_destinations(keys: Iterable[tuple[str, str]]) -> None:
    """Serialize throttle checks and bundling per destination for the rest of the transaction.
    Always in ascending key order, so two batches sharing destinations never wait on each other in a cycle."""
    if connection.vendor != "postgresql":
        return  # SQLite (the demo): write transactions are serialized anyway
    keys_sorted = sorted({locks.destination_key(channel, destination) for channel, destination in keys})
    with connection.cursor() as cur:
        # unnest() yields the sorted array in order and each row's lock is taken as it is produced.
        cur.execute(
            "SELECT pg_advisory_xact_lock(%s::int, k) FROM unnest(%s::int[]) AS k",
            [locks.PAGE_DESTINATION_CLASS, keys_sorted],
        )


def _pages_claim(ids: list[int], now: datetime, outcomes: dict[int, DeliveryOutcome]) -> list[int]:  # noqa: C901 (four phases in one transaction; to split)
    """In one transaction: cancel pages of incidents no longer triggered, hold back throttled
    destinations, claim one carrier per destination (`pending -> sending`) and bundle every other
    due page to it. Returns the carriers' ids; fills `outcomes` for every other id."""
    with transaction.atomic():
        rows = {
            row[0]: row
            for row in Page.objects.filter(pk__in=ids)
            .annotate(open=ExpressionWrapper(_sendable(), output_field=BooleanField()))
            .values_list("pk", "status", "due_at", "channel", "destination", "open")
        }
        cancel: list[int] = []
        due: dict[tuple[str, str], list[int]] = {}
        for pk in ids:
            row = rows.get(pk)
            if row is None:
                outcomes[pk] = DeliveryOutcome(pk, "skipped", detail="no such page")
                continue
            _, status, due_at, channel, destination, is_open = row
            if status != Page.Status.PENDING:
                outcomes[pk] = DeliveryOutcome(pk, "skipped", detail=f"status {status}")
            elif not is_open:
                cancel.append(pk)
                outcomes[pk] = DeliveryOutcome(pk, "canceled")
            elif due_at > now:
                outcomes[pk] = DeliveryOutcome(pk, "skipped", detail=f"due {due_at}")
            else:
                due.setdefault((channel, destination), []).append(pk)
        if cancel:
            Page.objects.filter(~_sendable(), pk__in=cancel, status=Page.Status.PENDING).update(
                status=Page.Status.CANCELED, status_at=now
            )
            metrics.pages_canceled(channels=[rows[pk][3] for pk in cancel])
        if not due:
            return []
        _lock_destinations(due)

        # Throttle: recent claims per destination (one query for the whole batch).
        longest = max(_throttle(channel)[1] for channel, _ in due)
        recent: dict[tuple[str, str], list[datetime]] = {}
        for channel, destination, claimed_at in (
            Page.objects.filter(_destinations(due), claimed_at__gt=now - longest, bundled_into__isnull=True)
            .exclude(status__in=[Page.Status.PENDING, Page.Status.CANCELED, Page.Status.BUNDLED])
            .exclude(pk__in=ids)
            .values_list("channel", "destination", "claimed_at")
        ):
            recent.setdefault((channel, destination), []).append(claimed_at)
        claimable: dict[tuple[str, str], list[int]] = {}
        for key, batch in due.items():
            count, window = _throttle(key[0])
            in_window = [at for at in recent.get(key, ()) if at > now - window]
            if len(in_window) < count:
                claimable[key] = batch
                continue
            free_at = min(in_window) + window
            Page.objects.filter(pk__in=batch, status=Page.Status.PENDING).update(
                throttled_at=Coalesce(F("throttled_at"), Value(now)), **_moved_due(free_at)
            )
            for pk in batch:
                outcomes[pk] = DeliveryOutcome(pk, "throttled", retry_at=free_at)
            metrics.claims_observe(channel=key[0], result="throttled", count=len(batch))
        if not claimable:
            return []

        # Lock every due pending page to these destinations whose incident is still triggered, in
        # id order: the batch's own pages and those that will ride along. A concurrent claimer waits
        # here and then sees them no longer pending.
        locked: dict[tuple[str, str], list[int]] = {}
        for pk, channel, destination in (
            Page.objects.select_for_update(of=("self",))
            .filter(_sendable(), _destinations(claimable), status=Page.Status.PENDING, due_at__lte=now)
            .order_by("pk")
            .values_list("pk", "channel", "destination")
        ):
            locked.setdefault((channel, destination), []).append(pk)
        carriers: list[int] = []
        bundle: dict[int, list[int]] = {}
        for key, batch in claimable.items():
            present = locked.get(key, [])
            carrier = next((pk for pk in batch if pk in present), None)
            for pk in batch:
                if pk not in present:
                    outcomes[pk] = DeliveryOutcome(pk, "skipped", detail="claimed elsewhere")
                elif pk != carrier:
                    outcomes[pk] = DeliveryOutcome(pk, "bundled", detail=f"carried by page {carrier}")
            if carrier is None:
                continue
            carriers.append(carrier)
            riders = [pk for pk in present if pk != carrier]
            if riders:
                bundle[carrier] = riders
        if carriers:
            Page.objects.filter(pk__in=carriers).update(
                status=Page.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, error=""
            )
        if bundle:
            Page.objects.filter(pk__in=[pk for riders in bundle.values() for pk in riders]).update(
                status=Page.Status.BUNDLED,
                status_at=now,
                bundled_into=Case(
                    *[When(pk__in=riders, then=Value(carrier)) for carrier, riders in bundle.items()],
                    output_field=BigIntegerField(),
                ),
            )
    return carriers
