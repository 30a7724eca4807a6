"""Slack: the incident message in the team's channel, buttons, `/oncall`, on-call user groups, people.

Guarantees:

* One message per incident: its `SlackIncidentMessage` row is unique per incident and holds the
  message's `ts`; later changes are `chat.update`s of that message. Syncs take a lease on the row
  (a short transaction) and call Slack outside any transaction; a sync finding the lease held marks
  the row dirty and the holder renders again before letting go, so the newest state always lands
  last. A post whose `ts` was never stored (the worker was killed after posting, or Slack's answer
  timed out) is looked for in the channel's history before anything is posted again: the row keeps
  `posting_since` until a `ts` is stored, and the next sync adopts a message of this incident the
  app posted since then (`conversations.history`).
* A button acts at most once per click: the interaction's row is claimed in the same transaction as
  the incident service's change, and the services themselves refuse a second acknowledgement.
* People act as themselves: a Slack user is the Backstop person whose Slack contact method names
  them, or else whose e-mail Slack gives for them; their rights are the portal's
  (`portal.permissions.can_work_incidents`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from escalations.incidents import services as incident_services
from escalations.models import Incident, SlackInboundRequest, SlackIncidentMessage, TimelineEvent
from escalations.slack import blocks, publish
from escalations.slack.client import (
    SlackError,
    SlackPermanentError,
    slack_call,
    slack_client,
    slack_configured,
)
from portal.models import ContactMethod, User
from portal.permissions import can_view_team, can_work_incidents
from rotations.models import Team
from rotations.selectors import team_oncall_get, team_shifts_get

logger = logging.getLogger(__name__)

# Longer than a call with the SDK's in-place 429 retries takes, so a live sync never loses its lease.
LEASE = timedelta(minutes=3)
DEFERRED = "deferred to the running sync"
# A stored interaction is only needed to refuse Slack's retries and replays, which come within minutes.
INBOUND_KEEP = timedelta(hours=1)
ONCALL_LOOKAHEAD = timedelta(days=60)

Kind = ContactMethod.Kind


# ------------------------------------------------------------------------------------- people


def slack_user_for(user: User) -> str | None:
    """The person's Slack user id: their Slack contact method, else Slack's answer for their e-mail."""
    method = ContactMethod.objects.filter(user=user, kind=Kind.SLACK, verified_at__isnull=False).first()
    if method is not None:
        return method.value
    try:
        answer = slack_call(slack_client().users_lookupByEmail, email=user.email)
    except SlackPermanentError:
        return None  # users_not_found: not in the workspace
    return str(answer["user"]["id"])


def backstop_user_for(slack_user_id: str) -> User | None:
    """The Backstop person behind a Slack user, or None (not linked, not in Backstop, deactivated)."""
    method = (
        ContactMethod.objects.filter(kind=Kind.SLACK, value=slack_user_id, verified_at__isnull=False)
        .select_related("user")
        .first()
    )
    if method is not None:
        return method.user if method.user.is_active else None
    try:
        answer = slack_call(slack_client().users_info, user=slack_user_id)
    except SlackPermanentError:
        return None
    email = str((answer["user"].get("profile") or {}).get("email") or "")
    if not email:
        return None  # bots and users the token may not see the e-mail of (users:read.email scope)
    return User.objects.filter(email__iexact=email, is_active=True).first()


def slack_contact_method_connect(*, user: User, now: datetime) -> ContactMethod:
    """Add (or refresh) the person's Slack contact method: their Slack user id, found by their e-mail.

    Verified at once: Slack vouches that the account with this e-mail is theirs. ValidationError when
    Slack is not configured or knows no account with the person's e-mail.
    """
    if not slack_configured():
        raise ValidationError("Slack is not configured on this installation.")
    try:
        answer = slack_call(slack_client().users_lookupByEmail, email=user.email)
    except SlackPermanentError:
        raise ValidationError(f"Slack has no account with your e-mail address {user.email}.") from None
    except SlackError:
        raise ValidationError("Slack could not be reached; try again in a moment.") from None
    slack_id = str(answer["user"]["id"])
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        existing = ContactMethod.objects.filter(user=user, kind=Kind.SLACK).first()
        if existing is not None:
            existing.value = slack_id
            existing.verified_at = existing.verified_at or now
            existing.save(update_fields=["value", "verified_at"])
            return existing
        limit = settings.BACKSTOP_MAX_CONTACT_METHODS
        if limit and ContactMethod.objects.filter(user=user).count() >= limit:
            raise ValidationError(
                f"You have {limit} contact methods, the most one person may have. Delete one to add another."
            )
        return ContactMethod.objects.create(user=user, kind=Kind.SLACK, value=slack_id, label="Slack", verified_at=now)


# ----------------------------------------------------------------------------- channel message


@dataclass(frozen=True)
class _Lease:
    token: str
    channel_id: str
    ts: str
    text: str
    blocks: list
    fingerprint: str
    look_since: datetime | None = None  # an earlier post may have landed since then


def _lease_take(incident_id: int, now: datetime) -> _Lease | str:
    """Take the sync lease and render; or say why there is nothing to do."""
    with transaction.atomic():
        incident = (
            Incident.objects.select_related("team", "acknowledged_by", "resolved_by")
            .prefetch_related("assignees")
            .filter(pk=incident_id)
            .first()
        )
        if incident is None:
            return "no such incident"
        row = SlackIncidentMessage.objects.select_for_update().filter(incident_id=incident_id).first()
        if row is None:
            channel = incident.team.slack_channel_id
            if not channel:
                return "team has no Slack channel"
            if incident.suppressed:
                return "suppressed"
            row, _ = SlackIncidentMessage.objects.get_or_create(
                incident_id=incident_id, defaults={"channel_id": channel}
            )
            row = SlackIncidentMessage.objects.select_for_update().get(pk=row.pk)
        if row.lease_until is not None and row.lease_until > now:
            row.dirty = True
            row.save(update_fields=["dirty"])
            return DEFERRED
        text, message_blocks = blocks.incident_message(incident)
        print_ = blocks.fingerprint(text, message_blocks)
        if row.ts and print_ == row.rendered_hash:
            return "unchanged"
        token = secrets.token_hex(8)
        look_since = row.posting_since if not row.ts else None
        if not row.ts and row.posting_since is None:
            row.posting_since = now
        row.lease_token, row.lease_until, row.dirty = token, now + LEASE, False
        row.save(update_fields=["lease_token", "lease_until", "dirty", "posting_since"])
        return _Lease(token, row.channel_id, row.ts, text, message_blocks, print_, look_since)


def _lease_release(
    incident_id: int, lease: _Lease, *, ts: str, now: datetime, error: str = "", nothing_posted: bool = False
) -> bool:
    """Store the outcome; True when a sync came in meanwhile and the message must be rendered again.
    `nothing_posted`: Slack refused the post outright, so there is nothing to look for next time."""
    with transaction.atomic():
        row = SlackIncidentMessage.objects.select_for_update().get(incident_id=incident_id)
        if row.lease_token != lease.token:
            return False  # the lease expired and another sync took over
        if ts:
            row.ts = ts
        if ts or nothing_posted:
            row.posting_since = None
        if not error:
            row.rendered_hash, row.synced_at = lease.fingerprint, now
        row.error = error[:1000]
        row.lease_token, row.lease_until = "", None
        again = row.dirty and not error
        row.dirty = row.dirty and bool(error)
        row.save()
        return again


def incident_message_sync(*, incident_id: int, now: datetime) -> str:
    """Post the incident's message to its team's channel, or update it to show the incident as it is.

    Raises SlackTemporaryError / SlackRateLimited (the task retries); a permanent refusal is stored on
    the row and logged.
    """
    if not slack_configured():
        return "Slack not configured"
    for _ in range(5):
        lease = _lease_take(incident_id, now)
        if isinstance(lease, str):
            return lease
        client = slack_client()
        posting = False
        try:
            content = {"channel": lease.channel_id, "text": lease.text, "blocks": lease.blocks}
            ts = lease.ts or _posted_earlier(client, incident_id, lease)
            if ts:
                slack_call(client.chat_update, ts=ts, **content)
                outcome = "updated" if lease.ts else "found"
            else:
                posting = True
                ts = str(slack_call(client.chat_postMessage, **content)["ts"])
                outcome = "posted"
        except SlackPermanentError as exc:
            _lease_release(incident_id, lease, ts="", now=now, error=str(exc), nothing_posted=posting)
            logger.warning("Slack message of incident %s: %s", incident_id, exc)
            return f"refused: {exc.code}"
        except SlackError as exc:
            _lease_release(incident_id, lease, ts="", now=now, error=str(exc))
            raise
        if not _lease_release(incident_id, lease, ts=ts, now=now):
            return outcome
    return "updated"


# Slack's ts is its own clock: look a little before our record of the earlier attempt.
HISTORY_MARGIN = timedelta(seconds=60)


def _posted_earlier(client, incident_id: int, lease: _Lease) -> str:
    """The ts of this incident's message if an earlier attempt posted it without storing the ts, else "".
    Without the history scope (`channels:history`, `groups:history`) the message is posted again, and
    the refusal is logged."""
    if lease.look_since is None:
        return ""
    oldest = (lease.look_since - HISTORY_MARGIN).timestamp()
    try:
        answer = slack_call(client.conversations_history, channel=lease.channel_id, oldest=f"{oldest:.6f}", limit=200)
    except SlackPermanentError as exc:
        logger.warning("Slack message of incident %s: no channel history (%s); posting", incident_id, exc)
        return ""
    for message in answer.get("messages") or []:
        if blocks.is_incident_message(message, incident_id):
            return str(message.get("ts", ""))
    return ""


# ------------------------------------------------------------------------------- interactions


def inbound_store(*, key: str, kind: str, payload: dict, now: datetime) -> SlackInboundRequest | None:
    """Store an inbound interaction once; None when Slack's id of it was seen before (a retry or replay).
    Rows older than INBOUND_KEEP go: the signature's 5-minute window refuses their replays already."""
    SlackInboundRequest.objects.filter(received_at__lt=now - INBOUND_KEEP).delete()
    row, created = SlackInboundRequest.objects.get_or_create(
        key=key[:128], defaults={"kind": kind, "payload": payload, "received_at": now}
    )
    return row if created else None


def _ephemeral(payload: dict, text: str) -> None:
    """A reply only the clicking person sees, where they clicked (a channel or the app's DM)."""
    where = payload.get("channel") if isinstance(payload.get("channel"), dict) else payload.get("container")
    channel = where.get("id") or where.get("channel_id") if isinstance(where, dict) else None
    user = payload["user"]["id"]
    if not channel:
        return
    try:
        slack_call(slack_client().chat_postEphemeral, channel=str(channel), user=user, text=text)
    except SlackError as exc:
        logger.warning("could not answer a Slack user: %s", exc)


def _act(action_id: str, incident: Incident, user: User, now: datetime) -> bool:
    via = TimelineEvent.Via.SLACK
    if action_id == "incident_acknowledge":
        return incident_services.incident_acknowledge(incident=incident, by=user, via=via, now=now)
    if action_id == "incident_escalate":
        return incident_services.incident_escalate(incident=incident, by=user, via=via, now=now)
    return incident_services.incident_resolve(incident=incident, by=user, via=via, now=now)


def _incident_id(value: object) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def interaction_handle(*, request_id: int, now: datetime) -> str:
    """Work one stored button click, exactly once: act as the clicking person, or tell them why not."""
    row = SlackInboundRequest.objects.filter(pk=request_id, processed_at__isnull=True).first()
    if row is None:
        return "already handled"
    payload = row.payload
    action: dict = next(iter(payload.get("actions") or []), {})
    action_id = str(action.get("action_id") or "")
    if action_id not in blocks.ACTIONS:
        return _finish(request_id, now, "not our action")
    incident_id = _incident_id(action.get("value"))
    incident = Incident.objects.select_related("team").filter(pk=incident_id).first() if incident_id else None
    slack_user_id = str((payload.get("user") or {}).get("id") or "")
    user = backstop_user_for(slack_user_id) if slack_user_id else None  # network: before any transaction
    reply = ""
    with transaction.atomic():
        unclaimed = SlackInboundRequest.objects.select_for_update().filter(pk=request_id, processed_at__isnull=True)
        if not unclaimed.exists():
            return "already handled"
        if incident is None:
            result, reply = "no such incident", "That incident does not exist any more."
        elif user is None:
            result = "unknown person"
            reply = "Your Slack account is not linked to a Backstop person, so you cannot act on incidents here."
        elif not can_work_incidents(user, incident.team_id):
            result = "refused"
            reply = f"You may not work incidents of {incident.team.name}."
        elif _act(action_id, incident, user, now):
            result = action_id.removeprefix("incident_")
        else:
            result = "no change"
            verb = blocks.ACTIONS[action_id].lower()
            reply = f"Incident #{incident.pk} is already {incident.status}; nothing to {verb}."
        SlackInboundRequest.objects.filter(pk=request_id).update(processed_at=now, result=result)
    if incident is not None and result == "no change":
        # The message may show an older state (the click came from a stale view): refresh it.
        publish.incident_message_refresh(incident_id=incident.pk)
    if reply:
        _ephemeral(payload, reply)
    return result


def _finish(request_id: int, now: datetime, result: str) -> str:
    SlackInboundRequest.objects.filter(pk=request_id, processed_at__isnull=True).update(processed_at=now, result=result)
    return result


# ------------------------------------------------------------------------------------ /oncall


def _team_find(text: str, channel_id: str, user: User) -> list[Team] | str:
    text = text.strip()
    if text:
        team = Team.objects.filter(Q(slug__iexact=text) | Q(name__iexact=text)).first()
        if team is None:
            return f"No team called “{text}”."
        return [team]
    by_channel = list(Team.objects.filter(slack_channel_id=channel_id).order_by("name")) if channel_id else []
    if by_channel:
        return by_channel
    mine = list(Team.objects.filter(memberships__user=user).order_by("name"))
    return mine or "Name a team: /oncall <team>."


def _names(user_ids: list[int], slack_ids: dict[int, str], users: dict[int, User]) -> str:
    parts = []
    for uid in user_ids:
        if uid in slack_ids:
            parts.append(f"<@{slack_ids[uid]}>")
        elif uid in users:
            parts.append(blocks._escape(users[uid].display_name))
    return ", ".join(parts) or "nobody"


def team_oncall_text(*, team: Team, now: datetime) -> str:
    """Who is on call for the team now, and who is next, per position."""
    current = team_oncall_get(team=team, at=now)
    upcoming = team_shifts_get(team=team, since=now, until=now + ONCALL_LOOKAHEAD, unclipped=True)
    lines = [f"*{blocks._escape(team.name)}*"]
    wanted: set[int] = set()
    rows: list[tuple[str, list[int], list[int], datetime | None]] = []
    for position, shifts in current.items():
        now_ids = list(dict.fromkeys(s.user_id for s in shifts if s.user_id is not None))
        later = sorted(
            (s for s in upcoming if s.position == position and s.start > now and s.user_id is not None),
            key=lambda s: s.start,
        )
        nxt = next((s for s in later if s.user_id not in now_ids), None)
        next_ids = [nxt.user_id] if nxt is not None and nxt.user_id is not None else []
        wanted.update(now_ids + next_ids)
        rows.append((position, now_ids, next_ids, nxt.start if nxt is not None else None))
    users = User.objects.in_bulk(list(wanted))
    slack_ids = dict(
        ContactMethod.objects.filter(user_id__in=wanted, kind=Kind.SLACK, verified_at__isnull=False).values_list(
            "user_id", "value"
        )
    )
    if not rows:
        lines.append("No rotations.")
    for position, now_ids, next_ids, at in rows:
        line = f"• {position.capitalize()}: {_names(now_ids, slack_ids, users)}"
        if next_ids and at is not None:
            # Slack shows the date in each reader's own time zone; the fallback text is UTC.
            when = f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"
            line += f" — next: {_names(next_ids, slack_ids, users)} from {when}"
        lines.append(line)
    return "\n".join(lines)


def oncall_answer(*, text: str, channel_id: str, slack_user_id: str, now: datetime) -> str:
    """The answer to `/oncall [team]`, for this Slack user (who must be able to see the team)."""
    try:
        user = backstop_user_for(slack_user_id) if slack_user_id else None
    except SlackError:
        return "Slack could not tell me who you are just now; try again in a moment."
    if user is None:
        return "Your Slack account is not linked to a Backstop person."
    found = _team_find(text, channel_id, user)
    if isinstance(found, str):
        return found
    visible = [t for t in found if can_view_team(user, t)]
    if not visible:
        return f"You may not see the roster of {found[0].name}." if text.strip() else "You are in no team."
    return "\n\n".join(team_oncall_text(team=t, now=now) for t in visible)


# --------------------------------------------------------------------------- on-call user groups


def oncall_usergroup_sync(*, team_id: int, now: datetime) -> str:
    """Set the team's Slack user group to exactly the people on call now (every position)."""
    team = Team.objects.filter(pk=team_id).first()
    if team is None or not team.slack_usergroup_id or not slack_configured():
        return "no user group"
    on_call = list(
        dict.fromkeys(s.user_id for shifts in team_oncall_get(team=team, at=now).values() for s in shifts if s.user_id)
    )
    slack_ids: list[str] = []
    for user in User.objects.filter(pk__in=on_call, is_active=True).order_by("pk"):
        slack_id = slack_user_for(user)
        if slack_id is None:
            logger.warning("%s is on call for %s but has no Slack account", user.display_name, team.name)
        elif slack_id not in slack_ids:
            slack_ids.append(slack_id)
    if not slack_ids:
        # Slack refuses an empty group (a group needs one member); keep the last holders rather than fail.
        return "nobody on call with a Slack account"
    slack_call(slack_client().usergroups_users_update, usergroup=team.slack_usergroup_id, users=slack_ids)
    return ",".join(slack_ids)
