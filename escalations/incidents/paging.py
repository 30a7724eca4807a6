"""Turning the engine's notify actions into Page rows (one INSERT per batch) and cancelling them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from escalations import engine
from escalations.incidents.publish import _on_commit_advance_many, _on_commit_deliver
from escalations.incidents.state import _incidents_store
from escalations.incidents.timeline import _name, timeline_record_many
from escalations.models import Incident, Page, TimelineEvent
from portal.models import ContactMethod, NotificationRule, User

Kind = TimelineEvent.Kind

# --------------------------------------------------------------------------------- pages


def _rules_for(user_ids: Iterable[int]) -> dict[int, list[tuple[str, engine.RuleSpec]]]:
    """Each person's notification rules over verified, reachable contact methods, as (urgency, rule),
    followed by every such method at delay 0 as ("fallback", rule). Two queries for any number of people.
    """
    user_ids = list(user_ids)
    rules: dict[int, list[tuple[str, engine.RuleSpec]]] = {uid: [] for uid in user_ids}
    usable = Q(contact_method__verified_at__isnull=False) & Q(contact_method__opted_out_at__isnull=True)
    rows = (
        NotificationRule.objects.filter(usable, user_id__in=user_ids)
        .order_by("user_id", "order", "delay", "id")
        .values_list("user_id", "urgency", "contact_method_id", "contact_method__kind", "delay", "id")
    )
    for user_id, urgency, method_id, kind, delay, rule_id in rows:
        rule = engine.RuleSpec(index=0, contact_method_id=method_id, channel=kind, delay=delay, rule_id=rule_id)
        rules[user_id].append((urgency, rule))
    methods = (
        ContactMethod.objects.filter(user_id__in=user_ids, verified_at__isnull=False, opted_out_at__isnull=True)
        .order_by("user_id", "kind", "id")
        .values_list("user_id", "id", "kind")
    )
    for user_id, method_id, kind in methods:
        rule = engine.RuleSpec(index=0, contact_method_id=method_id, channel=kind, delay=timedelta(0))
        rules[user_id].append(("fallback", rule))
    return rules


def _rules_for_urgency(rules: list[tuple[str, engine.RuleSpec]], urgency: str) -> list[engine.RuleSpec]:
    """The person's rules for this urgency; with none, every verified method at once, so a
    forgotten profile never means a silent page. Indexes count within the chosen list."""
    chosen = [rule for rule_urgency, rule in rules if rule_urgency in ("any", urgency)]
    if not chosen:
        chosen = [rule for rule_urgency, rule in rules if rule_urgency == "fallback"]
    return [replace(rule, index=index) for index, rule in enumerate(chosen)]


@dataclass
class _Notify:
    incident: Incident
    cycle: int
    step: int
    loop: int
    user_ids: tuple[int, ...]
    reached_at: datetime


class _Batch:
    """Everything one engine pass writes, collected first and written with a handful of queries."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.notifies: list[_Notify] = []
        self.timeline: list[TimelineEvent] = []
        self.assign: dict[int, tuple[int, ...]] = {}
        self.users: dict[int, User] = {}
        self.page_ids: list[int] = []
        self.pages_by_incident: dict[int, list[int]] = {}

    def event(self, incident: Incident, kind: str, message: str, **data: Any) -> None:
        self.timeline.append(
            TimelineEvent(
                incident=incident, kind=kind, message=message, via=TimelineEvent.Via.SYSTEM, data=data, at=self.now
            )
        )

    def write_pages(self) -> None:
        """One Page row per (notified person, rule); unreachable people land on the timeline."""
        if not self.notifies:
            return
        user_ids = {uid for n in self.notifies for uid in n.user_ids}
        rules = _rules_for(user_ids)
        method_ids = {rule.contact_method_id for rs in rules.values() for _, rule in rs}
        destinations = dict(ContactMethod.objects.filter(pk__in=method_ids).values_list("pk", "value"))
        pages: list[tuple] = []
        for notify in self.notifies:
            incident = notify.incident
            for user_id in notify.user_ids:
                planned = engine.notification_plan(
                    _rules_for_urgency(rules.get(user_id, []), incident.urgency), notify.reached_at
                )
                if not planned:
                    self.event(
                        incident,
                        Kind.PAGE_FAILED,
                        f"{_name(self.users.get(user_id))} has no verified contact method and cannot be paged.",
                        user_id=user_id,
                    )
                for plan in planned:
                    pages.append(
                        (
                            incident.pk,
                            notify.cycle,
                            notify.step,
                            notify.loop,
                            user_id,
                            plan.rule_index,
                            plan.channel,
                            plan.contact_method_id,
                            destinations[plan.contact_method_id],
                            plan.due_at,
                            plan.rule_id,
                            notify.reached_at,
                        )
                    )
        if not pages:
            return
        created = _pages_insert(pages)
        self.page_ids.extend(pid for pid, _, _ in created)
        for pid, _, incident_id in created:
            self.pages_by_incident.setdefault(incident_id, []).append(pid)
        _on_commit_deliver([(pid, due) for pid, due, _ in created])

    def flush(self, incidents: list[Incident]) -> None:
        self.write_pages()
        if self.assign:
            through = Incident.assignees.through
            through.objects.filter(incident_id__in=list(self.assign)).delete()
            through.objects.bulk_create(
                [through(incident_id=iid, user_id=uid) for iid, uids in self.assign.items() for uid in uids]
            )
        timeline_record_many(self.timeline)
        if incidents:
            _incidents_store(incidents)
            _on_commit_advance_many(incidents)


_PAGE_INSERT_SQL = (
    "INSERT INTO escalations_page (incident_id, cycle, step, loop, user_id, rule_index, channel, contact_method_id, "
    "destination, due_at, rule_id, reached_at, status, attempts, provider_id, error, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '', '', %s) ON CONFLICT DO NOTHING RETURNING id"
)


def _pages_insert(pages: Sequence[tuple]) -> list[tuple[int, datetime, int]]:
    """Insert pending pages given as (incident, cycle, step, loop, user, rule index, channel, contact
    method, destination, due, rule, reached) and return (id, due, incident id) of the rows created.

    The unique notification key makes a re-run of the same decision harmless: a row that exists is
    skipped (ON CONFLICT DO NOTHING), not created twice. One prepared statement executed many times
    (pipelined by psycopg): Django's bulk_create spends more on building model instances than the
    database spends on the rows.
    """
    moment = connection.ops.adapt_datetimefield_value  # the backend's own encoding (SQLite stores text)
    created_at = moment(timezone.now())
    pending = Page.Status.PENDING.value
    rows = [(*page[:9], moment(page[9]), page[10], moment(page[11]), pending, created_at) for page in pages]
    created: list[tuple[int, datetime, int]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.cursor.executemany(_PAGE_INSERT_SQL, rows, returning=True)
            raw = cursor.cursor
            for page in pages:
                row = raw.fetchone()
                if row is not None:
                    created.append((row[0], page[9], page[0]))
                if not raw.nextset():
                    break
        else:  # the SQLite demo: a handful of pages at a time
            for page, row in zip(pages, rows, strict=True):
                cursor.execute(_PAGE_INSERT_SQL, row)
                found = cursor.fetchone()
                if found is not None:
                    created.append((found[0], page[9], page[0]))
    return created


def _pages_create(
    *, incident: Incident, cycle: int, step: int, loop: int, user_ids: Sequence[int], reached_at: datetime
) -> list[int]:
    """Page these people now (outside the policy's steps, e.g. a reassignment)."""
    batch = _Batch(reached_at)
    batch.users = User.objects.in_bulk(list(user_ids))
    batch.notifies.append(_Notify(incident, cycle, step, loop, tuple(user_ids), reached_at))
    batch.write_pages()
    timeline_record_many(batch.timeline)
    return batch.page_ids


def _pages_cancel(incident: Incident, now: datetime) -> int:
    return Page.objects.filter(incident=incident, status=Page.Status.PENDING).update(
        status=Page.Status.CANCELED, status_at=now
    )
