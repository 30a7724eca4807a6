"""Before-shift reminders and "your upcoming shifts changed" notices.

Both are safe when two beats run at once: a reminder is owned by whoever inserts its ShiftReminder row
(unique per user, shift and lead); roster notices are compared and written under a row lock on the
person's user row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from portal.models import User
from rotations import schedule
from rotations._common import Hold, holds_of, insert_ignore, local, span
from rotations.models import NotificationPreference, RosterChangeNotice, Rotation, ShiftReminder
from rotations.models.handover import DEFAULT_REMINDER_LEADS
from rotations.notify import handover_message_send
from rotations.selectors import rotation_specs_for_teams

LATE_AFTER = timedelta(minutes=2)
# Holds are computed over a longer window than asked so their end is not clipped by the window.
HOLD_TAIL = timedelta(days=35)


@dataclass
class ReminderRunResult:
    sent: int = 0
    late: int = 0
    superseded: int = 0  # leads that were due together with a shorter one: recorded, not sent


def _prefs(user_ids: set[int]) -> dict[int, NotificationPreference]:
    return {p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=user_ids)}


def _leads(pref: NotificationPreference | None) -> list[int]:
    leads = pref.reminder_lead_minutes if pref is not None else DEFAULT_REMINDER_LEADS
    return sorted({int(x) for x in leads if int(x) > 0})


def _upcoming_holds(*, now: datetime, until: datetime) -> list[tuple[Rotation, Hold]]:
    """People's holds starting in (now, until), unclipped at the end, with their rotation."""
    rotations = {r.pk: r for r in Rotation.objects.select_related("team")}
    if not rotations:
        return []
    out = []
    loaded = rotation_specs_for_teams(
        team_ids={r.team_id for r in rotations.values()}, since=now, until=until + HOLD_TAIL
    )
    for ts in loaded.teams.values():
        shifts = schedule.team_shifts(ts.specs, ts.exclusions, ts.overrides, now, until + HOLD_TAIL)
        for hold in holds_of(shifts):
            # A hold starting exactly at `now` is clipped (already running): not upcoming.
            if hold.user_id is not None and now < hold.start < until:
                out.append((rotations[hold.rotation_id], hold))
    return out


def reminders_run(*, now: datetime) -> ReminderRunResult:
    """Remind each person `lead` minutes before each of their shifts, once per (user, shift, lead).

    A reminder missed while beat was down is still sent, marked late, as long as the shift has not
    started; when several leads are overdue together only the shortest goes out.
    """
    result = ReminderRunResult()
    prefs_all = NotificationPreference.objects.all()
    max_lead = max([max(_leads(p), default=0) for p in prefs_all] + DEFAULT_REMINDER_LEADS)
    holds = _upcoming_holds(now=now, until=now + timedelta(minutes=max_lead + 1))
    prefs = _prefs({h.user_id for _, h in holds})
    users = User.objects.in_bulk({h.user_id for _, h in holds})
    for rotation, hold in holds:
        pref = prefs.get(hold.user_id)
        due = [lead for lead in _leads(pref) if hold.start - timedelta(minutes=lead) <= now]
        if not due:
            continue
        inserted: list[int] = []
        with transaction.atomic():
            for lead in due:
                due_at = hold.start - timedelta(minutes=lead)
                row = ShiftReminder(
                    user_id=hold.user_id,
                    rotation=rotation,
                    position=hold.position,
                    shift_start=hold.start,
                    lead_minutes=lead,
                    due_at=due_at,
                    sent_at=now,
                    late=now - due_at > LATE_AFTER,
                    delivered=lead == min(due),
                )
                if insert_ignore(row) is not None:
                    inserted.append(lead)
        if min(due) not in inserted:
            # The shortest due lead was sent before (or by a concurrent run): the rest are stale.
            continue
        result.superseded += len(inserted) - 1
        lead = min(due)
        late = now - (hold.start - timedelta(minutes=lead)) > LATE_AFTER
        user = users[hold.user_id]
        tz = user.time_zone
        subject = f"Reminder: you are {hold.position} for {rotation.team.name} from {local(hold.start, tz)}"
        body = "\n".join(
            [
                f"Your {hold.position} shift for {rotation.team.name} ({rotation.name}) "
                f"starts in {span(hold.start - now)}:",
                f"{local(hold.start, tz)} until {local(hold.end, tz)}.",
                *(["(This reminder is late.)"] if late else []),
            ]
        )
        kinds = pref.reminder_kinds if pref is not None and pref.reminder_kinds else ["email"]
        handover_message_send(user=user, subject=subject, body=body, kinds=kinds)
        result.sent += 1
        result.late += int(late)
    return result


# --------------------------------------------------------------------------
# Roster change notices
# --------------------------------------------------------------------------


def _hold_key(rotation: Rotation, hold: Hold) -> dict:
    return {
        "rotation_id": rotation.pk,
        "team": rotation.team.name,
        "position": hold.position,
        "start": hold.start.isoformat(),
        "end": hold.end.isoformat(),
    }


def _identity(item: dict) -> tuple:
    return item["rotation_id"], item["position"], item["start"], item["end"]


def _describe(item: dict, tz: str) -> str:
    start = datetime.fromisoformat(item["start"])
    end = datetime.fromisoformat(item["end"])
    return f"- {item['position']}, {item['team']}: {local(start, tz)} – {local(end, tz)}"


def roster_changes_notify(*, now: datetime, horizon_days: int = 14) -> int:
    """Tell people whose shifts in the next `horizon_days` changed since last looked; returns notices sent.

    The first look at a person is a silent baseline. Only the overlap of the old and new windows is
    compared, so shifts entering the horizon or starting do not count as changes.
    """
    window_end = now + timedelta(days=horizon_days)
    per_user: dict[int, list[dict]] = {}
    for rotation, hold in _upcoming_holds(now=now, until=window_end):
        per_user.setdefault(hold.user_id, []).append(_hold_key(rotation, hold))
    # People with nothing upcoming any more still need to hear that their shifts went away.
    watched = set(RosterChangeNotice.objects.filter(window_end__gt=now).values_list("user_id", flat=True).distinct())
    sent = 0
    for user_id in sorted(set(per_user) | watched):
        current = sorted(per_user.get(user_id, []), key=lambda i: (i["start"], i["position"], i["rotation_id"]))
        digest = hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()
        message = ""
        with transaction.atomic():
            # FOR NO KEY UPDATE on the user row: serialises two beats per person without blocking FKs.
            user = User.objects.select_for_update(no_key=True).get(pk=user_id)
            last = RosterChangeNotice.objects.filter(user_id=user_id).order_by("-created_at", "-id").first()
            if last is not None and last.digest == digest:
                continue
            fields = {
                "digest": digest,
                "shifts": current,
                "window_start": now,
                "window_end": window_end,
                "created_at": now,
            }
            if last is None:
                RosterChangeNotice.objects.create(user=user, **fields)
                continue
            hi = min(last.window_end, window_end)
            before = {_identity(i): i for i in last.shifts if now < datetime.fromisoformat(i["start"]) < hi}
            after = {_identity(i): i for i in current if now < datetime.fromisoformat(i["start"]) < hi}
            added = [after[k] for k in sorted(set(after) - set(before), key=lambda k: k[2])]
            removed = [before[k] for k in sorted(set(before) - set(after), key=lambda k: k[2])]
            if not added and not removed:
                # Only the window moved: refresh the baseline in place.
                for name, value in fields.items():
                    setattr(last, name, value)
                last.save(update_fields=list(fields))
                continue
            tz = user.time_zone
            lines = ["Your upcoming on-call shifts changed."]
            if added:
                lines += ["", "New:"] + [_describe(i, tz) for i in added]
            if removed:
                lines += ["", "No longer yours:"] + [_describe(i, tz) for i in removed]
            message = "\n".join(lines)
            RosterChangeNotice.objects.create(user=user, sent_at=now, message=message, **fields)
        pref = NotificationPreference.objects.filter(user=user).first()
        kinds = pref.roster_change_kinds if pref is not None and pref.roster_change_kinds else ["email"]
        handover_message_send(user=user, subject="Your upcoming shifts changed", body=message, kinds=kinds)
        sent += 1
    return sent
