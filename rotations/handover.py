"""Shift handovers: exactly one message pair per change of holder of a rotation position.

``handovers_run`` (beat, every minute) works in two phases:

1. Record, per rotation, under a row lock on its HandoverCursor: the resolver's handoffs in
   (cursor, now] each INSERT a Handover row (ON CONFLICT DO NOTHING); only the inserting run hands the
   outgoing person's open incidents over (timeline row, reassign when the policy says so), in the same
   transaction. A handoff the rotation scheduled but an override cancelled is logged, never sent.
2. Send, outside any transaction: each unsent row is claimed with one conditional UPDATE, then the
   incoming/outgoing/team messages go out and sent_at is set. A claim older than CLAIM_STALE (a crash
   between claim and send) is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from escalations.incidents.services import incident_reassign
from escalations.incidents.timeline import timeline_record
from escalations.models import Incident, TimelineEvent
from escalations.slack import publish as slack_publish
from portal.models import User
from rotations import schedule
from rotations._common import holds_of, insert_ignore, local, span
from rotations.models import (
    Handover,
    HandoverCursor,
    HandoverNote,
    NotificationPreference,
    Rotation,
    Team,
)
from rotations.notify import handover_message_send, team_message_send
from rotations.selectors import TeamRoster, rotation_specs_for_teams

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=2)
# Beat down longer than this: older handoffs are not sent any more (the shifts are long over).
MAX_CATCH_UP = timedelta(days=7)
CLAIM_STALE = timedelta(minutes=10)
# How far ahead to look for the end of the incoming person's hold.
HOLD_HORIZON = timedelta(days=35)
# Notes older than this (or than the outgoing person's shift) are not carried over.
NOTE_LOOKBACK = timedelta(days=8)


@dataclass
class HandoverRunResult:
    recorded: int = 0  # handoffs inserted by this run (sent or to be sent)
    canceled: int = 0  # scheduled handoffs an override cancelled (logged only)
    sent: int = 0  # handovers whose messages this run sent
    late: int = 0
    messages: int = 0  # individual messages (incoming, outgoing, team mailbox)
    incidents_handed: int = 0
    errors: list[str] | None = None


def _kinds(user: User) -> list[str]:
    pref = NotificationPreference.objects.filter(user=user).first()
    return list(pref.handover_kinds) if pref and pref.handover_kinds else ["email"]


# --------------------------------------------------------------------------
# Phase 1: record
# --------------------------------------------------------------------------


def _holders_at(ts: TeamRoster, at: datetime) -> dict[str, list[int]]:
    """Position -> user ids holding it at `at`, across the team's rotations."""
    out: dict[str, list[int]] = {}
    for position, shifts in schedule.team_oncall_at(ts.specs, ts.exclusions, ts.overrides, at).items():
        out[position] = [s.user_id for s in shifts if s.user_id is not None]
    return out


def _incidents_hand(
    *, handover: Handover, team: Team, outgoing_id: int, incoming: User | None, now: datetime
) -> list[int]:
    """Timeline row on each open incident of the outgoing person; reassign where the policy says so."""
    incidents = list(
        Incident.objects.filter(team=team, assignees__pk=outgoing_id)
        .exclude(status=Incident.Status.RESOLVED)
        .select_related("policy")
        .prefetch_related("assignees")
        .order_by("created_at", "pk")
    )
    outgoing = User.objects.get(pk=outgoing_id)
    to_name = incoming.display_name if incoming else "nobody"
    for incident in incidents:
        reassign = bool(incoming and incident.policy and incident.policy.reassign_on_handover)
        timeline_record(
            incident=incident,
            kind=TimelineEvent.Kind.HANDOVER,
            message=f"{handover.position.capitalize()} shift handed over from {outgoing.display_name} to {to_name}"
            + ("." if reassign else "; assignees unchanged."),
            via=TimelineEvent.Via.SYSTEM,
            data={"handover_id": handover.pk, "from": outgoing_id, "to": incoming.pk if incoming else None},
            at=now,
        )
        if reassign:
            to_users = [u for u in incident.assignees.all() if u.pk != outgoing_id]
            if incoming not in to_users:
                to_users.append(incoming)
            incident_reassign(incident=incident, by=None, to_users=to_users, via=TimelineEvent.Via.SYSTEM, now=now)
    return [i.pk for i in incidents]


def _rotation_record(
    *, ts: TeamRoster, rotation: Rotation, now: datetime, lookback: timedelta, result: HandoverRunResult
) -> None:
    spec = ts.spec(rotation.pk)
    with transaction.atomic():
        cursor, _ = HandoverCursor.objects.select_for_update().get_or_create(
            rotation=rotation, defaults={"processed_until": now - lookback}
        )
        since = max(cursor.processed_until, now - MAX_CATCH_UP)
        if since >= now:
            return
        real = schedule.handoffs(spec, ts.exclusions, ts.overrides, since, now)
        seen = {(h.position, h.at) for h in real}
        # Without overrides: a handoff present there but not in `real` is one an override cancelled.
        scheduled = schedule.handoffs(spec, ts.exclusions, (), since, now)
        for h in real:
            after = _holders_at(ts, h.at)
            stays = h.outgoing_user_id is not None and any(h.outgoing_user_id in ids for ids in after.values())
            row = Handover(
                rotation=rotation,
                team_id=rotation.team_id,
                position=h.position,
                at=h.at,
                outgoing_user_id=h.outgoing_user_id,
                incoming_user_id=h.incoming_user_id,
                outgoing_stays_on_call=stays,
                due_at=h.at,
                created_at=now,
            )
            if insert_ignore(row) is None:
                continue  # another run recorded it
            result.recorded += 1
            # Slack's on-call user group follows the roster at every handoff (after the commit).
            slack_publish.oncall_usergroups_sync(team_ids=[rotation.team_id])
            if h.outgoing_user_id is not None and not stays and h.incoming_user_id is not None:
                incoming = User.objects.get(pk=h.incoming_user_id)
                handed = _incidents_hand(
                    handover=row, team=rotation.team, outgoing_id=h.outgoing_user_id, incoming=incoming, now=now
                )
                if handed:
                    Handover.objects.filter(pk=row.pk).update(incidents_handed=handed)
                    result.incidents_handed += len(handed)
        for h in scheduled:
            if (h.position, h.at) in seen:
                continue
            row = Handover(
                rotation=rotation,
                team_id=rotation.team_id,
                position=h.position,
                at=h.at,
                outgoing_user_id=h.outgoing_user_id,
                incoming_user_id=h.incoming_user_id,
                due_at=h.at,
                created_at=now,
                canceled_by_override=True,
            )
            if insert_ignore(row) is not None:
                result.canceled += 1
        if now > cursor.processed_until:
            cursor.processed_until = now
            cursor.save(update_fields=["processed_until"])


# --------------------------------------------------------------------------
# Phase 2: send
# --------------------------------------------------------------------------


def _hold_end(ts: TeamRoster, rotation_id: int, position: str, user_id: int, at: datetime) -> datetime | None:
    spec = ts.spec(rotation_id)
    shifts = schedule.rotation_shifts(spec, ts.exclusions, ts.overrides, at, at + HOLD_HORIZON)
    for hold in holds_of(shifts):
        if hold.position == position and hold.start == at and hold.user_id == user_id:
            return hold.end
    return None


def _hold_start(ts: TeamRoster, h: Handover) -> datetime | None:
    """Start of the outgoing person's hold that ends with this handoff."""
    spec = ts.spec(h.rotation_id)
    shifts = schedule.rotation_shifts(spec, ts.exclusions, ts.overrides, h.at - NOTE_LOOKBACK, h.at)
    for hold in holds_of(shifts):
        if hold.position == h.position and hold.end == h.at and hold.user_id == h.outgoing_user_id:
            return hold.start
    return None


def _notes_for(h: Handover, ts: TeamRoster | None, now: datetime) -> list[HandoverNote]:
    """The outgoing person's notes written during the shift now ending."""
    if h.outgoing_user_id is None:
        return []
    window_start = (_hold_start(ts, h) if ts else None) or h.at - NOTE_LOOKBACK
    return list(
        HandoverNote.objects.filter(
            author_id=h.outgoing_user_id, team_id=h.team_id, created_at__gte=window_start, created_at__lte=now
        )
        .filter(Q(rotation__isnull=True) | Q(rotation_id=h.rotation_id))
        .filter(Q(position="") | Q(position=h.position))
        .filter(Q(for_shift_end__isnull=True) | Q(for_shift_end__lte=h.at))
        .order_by("created_at", "pk")
    )


def _incident_lines(team: Team, handed: set[int], now: datetime) -> list[str]:
    incidents = list(
        Incident.objects.filter(team=team).exclude(status=Incident.Status.RESOLVED).order_by("created_at", "pk")
    )
    notes: dict[int, str] = {}
    for ev in TimelineEvent.objects.filter(incident__in=incidents, kind=TimelineEvent.Kind.NOTE).order_by("at", "pk"):
        notes[ev.incident_id] = ev.message
    lines = []
    for inc in incidents:
        mark = " (handed to you)" if inc.pk in handed else ""
        lines.append(f"- #{inc.pk} {inc.title} [{inc.status}, open {span(now - inc.created_at)}]{mark}")
        if inc.pk in notes:
            lines.append(f"    last note: {notes[inc.pk]}")
    return lines


def _handover_send(h: Handover, now: datetime, result: HandoverRunResult) -> str:  # noqa: C901 (one decision table per handover; to split)
    team = h.team
    roster = rotation_specs_for_teams(team_ids=[team.pk], since=h.at - NOTE_LOOKBACK, until=h.at + HOLD_HORIZON)
    ts = roster.teams.get(team.pk)
    late = now - h.due_at > LATE_AFTER
    incoming, outgoing = h.incoming_user, h.outgoing_user
    handed = list(h.incidents_handed or [])
    notes = _notes_for(h, ts, now)
    body = ""
    if incoming is not None:
        tz = incoming.time_zone
        end = _hold_end(ts, h.rotation_id, h.position, incoming.pk, h.at) if ts else None
        until = local(end, tz) if end else "further notice"
        subject = f"You are now {h.position} for {team.name} until {until}"
        lines = [f"{subject}."]
        if late:
            lines.append(f"(Sent late: this handover was due at {local(h.due_at, tz)}.)")
        lines.append(f"Taking over from {outgoing.display_name if outgoing else 'nobody (the position was empty)'}.")
        lines.append("")
        incident_lines = _incident_lines(team, set(handed), now)
        lines.append(f"Open incidents ({sum(1 for x in incident_lines if x.startswith('- '))}):")
        lines.extend(incident_lines or ["- none"])
        lines.append("")
        if notes:
            lines.append(f"Handover note from {outgoing.display_name}:")
            lines.extend(f"  {n.text}" for n in notes)
            lines.append("")
        others = []
        for position, ids in (_holders_at(ts, h.at) if ts else {}).items():
            if position == h.position:
                ids = [i for i in ids if i != incoming.pk]
            if ids:
                names = ", ".join(User.objects.get(pk=i).display_name for i in ids)
                others.append(f"- {position}: {names}")
        lines.append("Also on call:")
        lines.extend(others or ["- nobody"])
        body = "\n".join(lines)
        if late:
            subject += " (late)"
        if handover_message_send(user=incoming, subject=subject, body=body, kinds=_kinds(incoming)):
            result.messages += 1
    if outgoing is not None and not h.outgoing_stays_on_call:
        tz = outgoing.time_zone
        subject = f"Your {h.position} shift for {team.name} ended"
        to_name = incoming.display_name if incoming else "nobody"
        lines = [f"Your {h.position} shift for {team.name} ended at {local(h.at, tz)}."]
        if late:
            lines.append("(Sent late.)")
        lines.append(f"{len(handed)} incident{'s' if len(handed) != 1 else ''} handed to {to_name}.")
        if incoming is None:
            lines.append("Nobody took over this position.")
        if handover_message_send(user=outgoing, subject=subject, body="\n".join(lines), kinds=_kinds(outgoing)):
            result.messages += 1
    if team.handover_email:
        tz = team.time_zone
        subject = (
            f"Handover {team.name} {h.position}: {outgoing.display_name if outgoing else 'nobody'} → "
            f"{incoming.display_name if incoming else 'nobody'}"
        )
        summary = [
            f"{subject} at {local(h.at, tz)}{' (sent late)' if late else ''}.",
            f"{len(handed)} incident(s) handed over.",
        ]
        summary.extend(f"Note: {n.text}" for n in notes)
        team_message_send(address=team.handover_email, subject=subject, body="\n".join(summary))
        result.messages += 1
    return body


def _send_pending(*, now: datetime, result: HandoverRunResult) -> None:
    stale = now - CLAIM_STALE
    unclaimed = Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale)
    pending = (
        Handover.objects.filter(
            sent_at__isnull=True, canceled_by_override=False, due_at__lte=now, due_at__gt=now - MAX_CATCH_UP
        )
        .filter(unclaimed)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)
    )
    for pk in list(pending):
        # The conditional UPDATE is the claim: of two concurrent runs exactly one gets rowcount 1.
        if not Handover.objects.filter(pk=pk, sent_at__isnull=True).filter(unclaimed).update(claimed_at=now):
            continue
        h = Handover.objects.select_related("team", "incoming_user", "outgoing_user").get(pk=pk)
        body = _handover_send(h, now, result)
        late = now - h.due_at > LATE_AFTER
        Handover.objects.filter(pk=pk).update(sent_at=now, late=late, message=body)
        result.sent += 1
        result.late += int(late)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def handovers_run(*, now: datetime, lookback: timedelta = timedelta(hours=6)) -> HandoverRunResult:
    """Record and send every handoff in (last run, now]; safe to run concurrently and repeatedly."""
    result = HandoverRunResult(errors=[])
    rotations = list(Rotation.objects.select_related("team").order_by("pk"))
    team_ids = {r.team_id for r in rotations}
    specs = (
        rotation_specs_for_teams(
            team_ids=team_ids, since=now - MAX_CATCH_UP - timedelta(days=1), until=now + timedelta(days=1)
        ).teams
        if rotations
        else {}
    )
    for rotation in rotations:
        try:
            _rotation_record(ts=specs[rotation.team_id], rotation=rotation, now=now, lookback=lookback, result=result)
        except Exception as exc:  # one broken rotation must not stop the others' handovers
            log.exception("handover recording failed for rotation %s", rotation.pk)
            result.errors.append(f"rotation {rotation.pk}: {exc!r}")
    _send_pending(now=now, result=result)
    if result.errors:
        raise RuntimeError("; ".join(result.errors))
    return result


HANDOVER_NOTE_MAX = 5000


def team_positions_get(*, team: Team) -> list[str]:
    """The positions of the team's rotations, each once, in rotation order."""
    positions: dict[str, None] = {}
    for rotation in team.rotations.order_by("name", "pk"):
        for position in rotation.positions:
            positions.setdefault(position, None)
    return list(positions)


def handover_note_add(
    *,
    team: Team,
    author: User,
    text: str,
    position: str = "",
    rotation: Rotation | None = None,
    for_shift_end: datetime | None = None,
    now: datetime,
) -> HandoverNote:
    """Save a note for the author's next handover in `team`. Who may write is the caller's check
    (portal.permissions.can_work_incidents); what is written is checked here, for portal and API alike."""
    text = (text or "").strip()
    errors: dict[str, list[str]] = {}
    if not text:
        errors["text"] = ["Write what the next person should know."]
    elif len(text) > HANDOVER_NOTE_MAX:
        errors["text"] = [f"At most {HANDOVER_NOTE_MAX} characters."]
    if position and position not in team_positions_get(team=team):
        errors["position"] = [f"{team.name} has no position {position!r}."]
    if rotation is not None and rotation.team_id != team.pk:
        errors["rotation"] = [f"{rotation.name} is not a rotation of {team.name}."]
    if errors:
        raise ValidationError(errors)
    return HandoverNote.objects.create(
        team=team,
        rotation=rotation,
        position=position,
        author=author,
        text=text,
        created_at=now,
        for_shift_end=for_shift_end,
    )


def handover_log_get(*, team: Team, limit: int = 50) -> list[Handover]:
    """The team's handovers, newest first (cancelled ones included, marked)."""
    return list(
        Handover.objects.filter(team=team)
        .select_related("rotation", "outgoing_user", "incoming_user")
        .order_by("-at", "position")[:limit]
    )
