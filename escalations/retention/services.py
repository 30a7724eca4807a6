"""Retention: personal data from the emergency line, the outbox and alert payloads is kept for a while,
then deleted, as the intake inbox does with applied events (escalations.inbox.inbox_purge).

* Calls (number, transcript, recording URL, callback log) older than BACKSTOP_CALL_RETENTION are deleted,
  and their recordings at Twilio with them. A recording Twilio could not delete keeps its call row,
  so the next run tries again; nothing is forgotten while the audio still exists.
* Outbox rows (the demo's stand-in for SMS, calls and e-mail, codes included) older than
  BACKSTOP_OUTBOX_RETENTION are deleted.
* Payloads (the alert or voicemail as it arrived) of alerts received, and of incidents resolved, longer
  than BACKSTOP_PAYLOAD_RETENTION ago are emptied; the incidents and their timelines stay for Insights.

Every step works in batches of `chunk` rows, each its own short statement, and is idempotent: a run
that dies half-way leaves less to do for the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from escalations.models import Alert, CallRecord, Incident, OutboxMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    calls: int
    recordings: int
    recordings_kept: int
    outbox: int
    payloads: int


def recording_delete(*, recording_sid: str) -> bool:
    """Delete a recording at Twilio; True when it is gone (deleted now or before)."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    from escalations.delivery.channels.twilio import twilio_client, twilio_configured

    if not twilio_configured():
        return False
    try:
        twilio_client().recordings(recording_sid).delete()
    except TwilioRestException as exc:
        if exc.status == 404:
            return True
        logger.warning("Recording %s not deleted at Twilio (HTTP %s); kept for the next run", recording_sid, exc.status)
        return False
    except (TwilioException, OSError) as exc:
        logger.warning(
            "Recording %s not deleted at Twilio (%s); kept for the next run", recording_sid, type(exc).__name__
        )
        return False
    return True


def calls_purge(*, now: datetime, chunk: int = 1000) -> tuple[int, int, int]:
    """(calls deleted, recordings deleted at Twilio, calls kept because their recording was not)."""
    cutoff = now - settings.BACKSTOP_CALL_RETENTION
    deleted = recordings = kept = 0
    kept_ids: set[int] = set()
    while True:
        rows = list(
            CallRecord.objects.filter(started_at__lt=cutoff)
            .exclude(pk__in=kept_ids)
            .order_by("started_at")
            .values_list("id", "recording_sid", "simulated")[:chunk]
        )
        if not rows:
            return deleted, recordings, kept
        ids = []
        for pk, recording_sid, simulated in rows:
            if recording_sid and not simulated:
                if not recording_delete(recording_sid=recording_sid):
                    kept_ids.add(pk)
                    kept += 1
                    continue
                recordings += 1
            ids.append(pk)
        if ids:
            deleted += CallRecord.objects.filter(pk__in=ids).delete()[0]


def outbox_purge(*, now: datetime, chunk: int = 10_000) -> int:
    cutoff = now - settings.BACKSTOP_OUTBOX_RETENTION
    deleted = 0
    while True:
        ids = list(
            OutboxMessage.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("id", flat=True)[:chunk]
        )
        if not ids:
            return deleted
        deleted += OutboxMessage.objects.filter(pk__in=ids).delete()[0]


def payloads_purge(*, now: datetime, chunk: int = 10_000) -> int:
    cutoff = now - settings.BACKSTOP_PAYLOAD_RETENTION
    emptied = 0
    for queryset in (
        Alert.objects.filter(received_at__lt=cutoff),
        Incident.objects.filter(status=Incident.Status.RESOLVED, resolved_at__lt=cutoff),
    ):
        queryset = queryset.filter(~Q(payload={}))
        while True:
            ids = list(queryset.order_by("pk").values_list("id", flat=True)[:chunk])
            if not ids:
                break
            emptied += queryset.model.objects.filter(pk__in=ids).update(payload={})
    return emptied


def retention_purge(*, now: datetime) -> PurgeResult:
    calls, recordings, kept = calls_purge(now=now)
    return PurgeResult(
        calls=calls,
        recordings=recordings,
        recordings_kept=kept,
        outbox=outbox_purge(now=now),
        payloads=payloads_purge(now=now),
    )
