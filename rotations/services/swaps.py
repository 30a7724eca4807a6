"""Swap requests: "please take my shifts from … to …". Nothing changes on the roster until the
colleague accepts; acceptance creates the override through override_create (its checks and audit),
in the same transaction as the status change, so a request is accepted once or not at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from rotations.audit import audit_record, diff
from rotations.models import AuditEntry, Rotation, SwapRequest
from rotations.services.overrides import override_conflicts_check, override_create
from rotations.services.validation import team_paging_members_check, validate_span


def _state(s: SwapRequest) -> dict[str, Any]:
    return {"requester": s.requester_id, "taker": s.taker_id, "start": s.start, "end": s.end, "status": s.status}


@transaction.atomic
def swap_request_create(
    *, rotation: Rotation, requester: Any, taker: Any, start: datetime, end: datetime, reason: str = "", now: datetime
) -> SwapRequest:
    """The requester asks `taker` to take the requester's shifts of `rotation` in [start, end)."""
    if taker.pk == requester.pk:
        raise ValidationError({"taker": ["Ask a colleague, not yourself."]})
    team_paging_members_check(team=rotation.team, users=[requester], field="rotation")
    team_paging_members_check(team=rotation.team, users=[taker], field="taker")
    validate_span(start, end)
    if end <= now:
        raise ValidationError({"end": ["That window is over already."]})
    # Refuse now what acceptance would refuse (someone already takes these shifts, or the taker is busy).
    override_conflicts_check(
        rotation=rotation, user=taker, start=start, end=end, position=None, replaces_user=requester
    )
    swap = SwapRequest.objects.create(
        rotation=rotation, requester=requester, taker=taker, start=start, end=end, reason=reason, created_at=now
    )
    audit_record(
        actor=requester, team=rotation.team, action=AuditEntry.Action.CREATE, obj=swap, changes=diff({}, _state(swap))
    )
    return swap


def _decide(
    *, swap_id: int, actor: Any, allowed: str, status: str, now: datetime
) -> tuple[SwapRequest, dict[str, Any]]:
    """Lock the request, check who answers and that it is still open; set the new status (unsaved)."""
    swap = SwapRequest.objects.select_for_update().select_related("rotation__team").get(pk=swap_id)
    if getattr(swap, f"{allowed}_id") != actor.pk:
        raise PermissionDenied(f"Only the {allowed} can do that.")
    if swap.status != SwapRequest.Status.PENDING:
        raise ValidationError({"status": [f"This request is {swap.get_status_display().lower()} already."]})
    before = _state(swap)
    swap.status, swap.decided_at = status, now
    return swap, before


@transaction.atomic
def swap_request_accept(*, swap_id: int, actor: Any, now: datetime) -> SwapRequest:
    swap, before = _decide(swap_id=swap_id, actor=actor, allowed="taker", status=SwapRequest.Status.ACCEPTED, now=now)
    swap.override = override_create(
        rotation=swap.rotation,
        user=swap.taker,
        start=swap.start,
        end=swap.end,
        replaces_user=swap.requester,
        reason=swap.reason or f"Swap request #{swap.pk}",
        actor=actor,
    )
    swap.save(update_fields=["status", "decided_at", "override"])
    audit_record(
        actor=actor,
        team=swap.rotation.team,
        action=AuditEntry.Action.UPDATE,
        obj=swap,
        changes=diff(before, _state(swap)),
    )
    return swap


@transaction.atomic
def swap_request_decline(*, swap_id: int, actor: Any, now: datetime) -> SwapRequest:
    swap, before = _decide(swap_id=swap_id, actor=actor, allowed="taker", status=SwapRequest.Status.DECLINED, now=now)
    swap.save(update_fields=["status", "decided_at"])
    audit_record(
        actor=actor,
        team=swap.rotation.team,
        action=AuditEntry.Action.UPDATE,
        obj=swap,
        changes=diff(before, _state(swap)),
    )
    return swap


@transaction.atomic
def swap_request_cancel(*, swap_id: int, actor: Any, now: datetime) -> SwapRequest:
    swap, before = _decide(
        swap_id=swap_id, actor=actor, allowed="requester", status=SwapRequest.Status.CANCELLED, now=now
    )
    swap.save(update_fields=["status", "decided_at"])
    audit_record(
        actor=actor,
        team=swap.rotation.team,
        action=AuditEntry.Action.UPDATE,
        obj=swap,
        changes=diff(before, _state(swap)),
    )
    return swap
