"""Notification rules changed while incidents are paging their owner.

A step writes one Page row per rule when it reaches a person, due `delay` after `reached_at`. A
rule added, edited or deleted later is brought into line with those rows here, as GoAlert does by
firing on each run the rules whose delay falls between its previous run and now:

* added (or made to apply by an edit): a page due at `reached_at + delay` in every step now paging
  the person, if that moment has not passed (`engine.rule_due`); never replayed into the past;
* delay edited: its pending page is re-timed, or canceled if the new moment has passed; a page
  already sent stays the only one for that rule in that step;
* deleted, or no longer applying: its pending pages are canceled. Delivery also refuses a page
  whose rule is gone (`delivery.claim`), whichever way the rule was deleted.

Exactly once: at most one page per (incident, cycle, step, loop, person, rule), by a unique
constraint; the incidents are locked, as the engine locks them, so a step being reached and a
rule being changed for the same incident never interleave.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max, Min

from escalations import engine
from escalations.incidents.paging import _pages_insert
from escalations.incidents.publish import _on_commit_deliver
from escalations.models import Incident, Page
from portal.models import ContactMethod, NotificationRule

Status = Incident.Status


def _usable(rule: NotificationRule) -> bool:
    method = rule.contact_method
    return method.verified_at is not None and method.opted_out_at is None


def pages_rule_apply(*, rule: NotificationRule, now: datetime) -> list[int]:
    """Bring the pages of every triggered incident now paging the rule's owner in line with the rule
    as it is now (just added or edited). Returns the ids of the pages created. The caller holds
    the transaction that changed the rule."""
    with transaction.atomic():
        incident_ids = set(
            Page.objects.filter(user_id=rule.user_id, reached_at__isnull=False)
            .filter(incident__status=Status.TRIGGERED, incident__suppressed=False)
            .values_list("incident_id", flat=True)
        )
        if not incident_ids:
            return []
        incidents = {
            i.pk: i
            for i in Incident.objects.select_for_update(of=("self",))
            .filter(pk__in=incident_ids, status=Status.TRIGGERED, suppressed=False)
            .order_by("pk")
        }
        # Pages of earlier steps in the current cycle keep going out after the incident escalates
        # (they are only canceled by acknowledging or resolving), so every such step counts.
        groups = (
            Page.objects.filter(user_id=rule.user_id, incident_id__in=list(incidents), reached_at__isnull=False)
            .order_by()
            .values("incident_id", "cycle", "step", "loop")
            .annotate(reached=Min("reached_at"), top=Max("rule_index"))
        )
        mine = {
            (p.incident_id, p.cycle, p.step, p.loop): p
            for p in Page.objects.filter(rule_id=rule.pk, incident_id__in=list(incidents))
        }
        usable = _usable(rule)
        new_rows: list[tuple] = []
        retimed: list[tuple[int, datetime]] = []
        cancel: list[int] = []
        for group in groups:
            incident = incidents[group["incident_id"]]
            if group["cycle"] != incident.cycle:
                continue
            key = (incident.pk, group["cycle"], group["step"], group["loop"])
            applies = usable and rule.urgency in (NotificationRule.Urgency.ANY, incident.urgency)
            due = engine.rule_due(reached_at=group["reached"], delay=rule.delay, changed_at=now) if applies else None
            page = mine.get(key)
            if page is None:
                if due is not None:
                    new_rows.append(
                        (
                            *key,
                            rule.user_id,
                            group["top"] + 1,
                            rule.contact_method.kind,
                            rule.contact_method_id,
                            rule.contact_method.value,
                            due,
                            rule.pk,
                            group["reached"],
                        )
                    )
            elif page.status == Page.Status.PENDING:
                if due is None:
                    cancel.append(page.pk)
                elif due != page.due_at:
                    retimed.append((page.pk, due))
        if cancel:
            Page.objects.filter(pk__in=cancel, status=Page.Status.PENDING).update(
                status=Page.Status.CANCELED, status_at=now
            )
        for pk, due in retimed:
            Page.objects.filter(pk=pk, status=Page.Status.PENDING).update(due_at=due)
        created = _pages_insert(new_rows) if new_rows else []
        wake = [(pid, due) for pid, due, _ in created] + retimed
        if wake:
            _on_commit_deliver(wake)
        return [pid for pid, _, _ in created]


def pages_rule_withdraw(*, rule_id: int, now: datetime) -> int:
    """Cancel the pending pages of a rule being deleted. Returns how many."""
    return Page.objects.filter(rule_id=rule_id, status=Page.Status.PENDING).update(
        status=Page.Status.CANCELED, status_at=now
    )


def pages_contact_method_withdraw(*, method: ContactMethod, now: datetime) -> int:
    """Cancel the pending pages to a contact method being deleted (its rules' and the fallback's)."""
    return Page.objects.filter(contact_method=method, status=Page.Status.PENDING).update(
        status=Page.Status.CANCELED, status_at=now
    )
