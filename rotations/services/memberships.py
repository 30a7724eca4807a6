"""Memberships: add, change role, remove, with the dependents check."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from escalations.models import EscalationTarget
from rotations.audit import audit_record
from rotations.models import (
    AuditEntry,
    Membership,
    Override,
    RotationEra,
    RotationParticipant,
    Team,
)
from rotations.services.hooks import roster_changed

# --------------------------------------------------------------------------- team members (portal page)
#
# The portal's member page uses these guarded writes. Guard rails, decided here so the page, tests
# and any later caller agree (staff included: a clear refusal beats an orphaned team or a roster
# that pages someone who is no longer there):
# - a team with members keeps at least one manager: the last manager cannot be removed or demoted
#   while anyone else is in the team (make someone else a manager first). Removing the very last
#   member is allowed.
# - a person the team's schedule or policies still depend on (a participant of a rotation's current
#   or a future definition, the taker of an override that has not ended, a target named in an
#   escalation step) cannot be removed or made a viewer; the error names what to change first.


def _role_label(role: str) -> str:
    return Membership.Role(role).label


def membership_dependents(*, team: Team, user, now: datetime) -> list[str]:
    """What still needs `user` as an on-call member of `team`, in words ("rotation Weekly"); [] = nothing.

    Four queries whatever the roster's size.
    """
    eras = list(RotationEra.objects.filter(rotation__team=team).values_list("pk", "rotation_id", "effective_from"))
    current: dict[int, tuple[datetime, int]] = {}
    relevant: set[int] = set()
    for era_id, rotation_id, effective_from in eras:
        if effective_from > now:
            relevant.add(era_id)  # a definition still to come
        elif rotation_id not in current or effective_from > current[rotation_id][0]:
            current[rotation_id] = (effective_from, era_id)
    relevant |= {era_id for _, era_id in current.values()}
    out = []
    rotations = sorted(
        set(
            RotationParticipant.objects.filter(era_id__in=relevant, user=user).values_list(
                "era__rotation__name", flat=True
            )
        )
    )
    out += [f"rotation {name}" for name in rotations]
    overrides = sorted(
        set(
            Override.objects.filter(rotation__team=team, user=user, end__gt=now).values_list(
                "rotation__name", flat=True
            )
        )
    )
    out += [f"an override in rotation {name} that has not ended" for name in overrides]
    steps = sorted(
        set(
            EscalationTarget.objects.filter(
                step__policy__team=team, kind=EscalationTarget.Kind.USER, user=user
            ).values_list("step__policy__name", "step__order")
        )
    )
    out += [f"escalation policy {name}, step {order + 1}" for name, order in steps]
    return out


def _last_manager_check(*, membership: Membership, verb: str) -> None:
    """Refuse when `membership` is the team's only manager and other people are in the team."""
    if membership.role != Membership.Role.MANAGER:
        return
    # Lock the team's managers so two managers demoting each other at once cannot both succeed.
    managers = list(
        Membership.objects.select_for_update()
        .filter(team_id=membership.team_id, role=Membership.Role.MANAGER)
        .values_list("pk", flat=True)
    )
    others = Membership.objects.filter(team_id=membership.team_id).exclude(pk=membership.pk).exists()
    if managers == [membership.pk] and others:
        raise ValidationError(
            {
                "role": [
                    f"{membership.user.display_name} is the last manager of {membership.team}: make someone else a "
                    f"manager before you {verb} them, or the team is left with nobody to manage it."
                ]
            }
        )


def _dependents_check(*, membership: Membership, now: datetime, verb: str) -> None:
    needs = membership_dependents(team=membership.team, user=membership.user, now=now)
    if needs:
        raise ValidationError(
            {
                "user": [
                    f"Cannot {verb} {membership.user.display_name}: {membership.team} still depends on them in "
                    f"{'; '.join(needs)}. Change that first."
                ]
            }
        )


@transaction.atomic
def membership_create(*, team: Team, user, role: str, actor) -> Membership:
    """Add `user` to `team` with `role`; refuses someone who is already a member."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of {', '.join(Membership.Role.values)}."]})
    if not user.is_active:
        raise ValidationError({"user": [f"{user.display_name} is deactivated and cannot join a team."]})
    existing = Membership.objects.filter(team=team, user=user).first()
    if existing is not None:
        raise ValidationError(
            {
                "user": [
                    f"{user.display_name} is already in {team} as {_role_label(existing.role).lower()}; "
                    f"change their role in the list instead."
                ]
            }
        )
    try:
        # Savepoint: a concurrent add of the same person wins the unique constraint; this one is told, not a 500.
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=user, role=role)
    except IntegrityError:
        raise ValidationError({"user": [f"{user.display_name} was just added to {team} by someone else."]}) from None
    audit_record(
        actor=actor,
        team=team,
        action=AuditEntry.Action.CREATE,
        obj=membership,
        changes={"user": [None, user.pk], "role": [None, role]},
    )
    roster_changed(team_ids=[team.pk])
    return membership


@transaction.atomic
def membership_update(*, membership: Membership, role: str, actor, now: datetime) -> Membership:
    """Change a member's role, keeping a manager and never making an on-call person a viewer."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"Choose one of {', '.join(Membership.Role.values)}."]})
    membership = Membership.objects.select_for_update(of=("self",)).select_related("team", "user").get(pk=membership.pk)
    old = membership.role
    if old == role:
        return membership
    if role != Membership.Role.MANAGER:
        _last_manager_check(membership=membership, verb="demote")
    if role == Membership.Role.VIEWER:
        # Viewers cannot act on incidents, so they must not be the ones paged.
        _dependents_check(membership=membership, now=now, verb="make a viewer of")
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        team=membership.team,
        action=AuditEntry.Action.UPDATE,
        obj=membership,
        changes={"role": [old, role]},
    )
    roster_changed(team_ids=[membership.team_id])  # a new manager hears about gaps from now on
    return membership


@transaction.atomic
def membership_delete(*, membership: Membership, actor, now: datetime) -> None:
    """Take a member out of the team, unless the team would lose its last manager or still depends on them."""
    membership = Membership.objects.select_for_update(of=("self",)).select_related("team", "user").get(pk=membership.pk)
    _last_manager_check(membership=membership, verb="remove")
    _dependents_check(membership=membership, now=now, verb="remove")
    audit_record(
        actor=actor,
        team=membership.team,
        action=AuditEntry.Action.DELETE,
        obj=membership,
        changes={"user": [membership.user_id, None], "role": [membership.role, None]},
    )
    roster_changed(team_ids=[membership.team_id])
    membership.delete()
