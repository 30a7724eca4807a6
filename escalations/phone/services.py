"""Emergency line services: a customer's call becomes a CallRecord, a voicemail an incident.

Twilio reports one call through several requests that arrive separately, in any order, and
may be retried: the <Record> action, the recording status callback, the transcription
callback and the call status callback. Every service here locks the CallRecord row (keyed by
CallSid) before looking at it, stores whatever arrived, and derives the next state from what
is stored, so any order and any number of repeats ends in the same place:

* the incident is opened (or a repeat call is added to the caller's open incident) exactly
  once, as soon as a recording of at least MIN_RECORDING_SECONDS is known;
* a transcription that arrives first is kept on the record and used when the incident opens;
* hang-ups without a usable recording only set the call's outcome.

Caller ID can be spoofed. A call counts as a known customer's (`caller_verified`) only when its number
is in the customer directory and the carrier attested it with full STIR/SHAKEN attestation (Twilio's
`StirVerstat` TN-Validation-Passed-A). Such calls are never refused by the line's cap and always open or
join their own incident. Everyone else shares the line's budget of new incidents per hour
(BACKSTOP_PHONE_NEW_INCIDENTS_PER_LINE_PER_HOUR): beyond it, their voicemails join one open "call flood"
incident for the line, so rotating spoofed numbers page once instead of opening dozens of incidents.

No HTTP here (see escalations.phone.views); Twilio is only called from the Celery task that
sends the caller's SMS confirmation, after commit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from escalations.delivery.channels import ChannelError, OutgoingMessage, channel_for
from escalations.incidents import selectors as incidents_selectors
from escalations.incidents import services, timeline
from escalations.models import (
    BlockedNumber,
    CallRecord,
    Incident,
    PhoneLine,
    PhoneMenuOption,
    TimelineEvent,
)
from escalations.monitoring import metrics
from escalations.phone import publish
from escalations.phone.records import (
    connect_attempts_describe,
    duration_parse,
    record_event_add,
    record_incident_payload,
    record_lock,
    record_menu_option,
    record_policy,
)
from escalations.phone.selectors import (
    call_recording_path,
    call_team,
    caller_identify,
    caller_label,
    phone_normalize,
)
from rotations.models import Team

logger = logging.getLogger(__name__)

# Twilio's built-in transcription only handles recordings of 2 to 120 seconds; a shorter
# recording is a hang-up at the beep, not a message.
MIN_RECORDING_SECONDS = 2
MAX_TRANSCRIBED_SECONDS = 120
# A repeat call re-pages an acknowledged incident once the acknowledgement is this old
# (the policy's ack_timeout when it has one).
DEFAULT_REPEAT_CALL_ACK_TIMEOUT = timedelta(minutes=30)
RATE_WINDOW = timedelta(hours=1)
# Twilio's StirVerstat for a call whose caller ID the originating carrier fully attested (A); B and C
# (partial or gateway attestation) say nothing about who is calling.
ATTESTED = "TN-Validation-Passed-A"
TERMINAL_CALL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
Outcome = CallRecord.Outcome
TStatus = CallRecord.TranscriptStatus


def _transcript_text(record: CallRecord) -> str:
    if record.transcript_status == TStatus.COMPLETED:
        return record.transcript or "(empty transcript)"
    if record.transcript_status == TStatus.FAILED:
        return "Transcription failed: listen to the recording."
    if record.transcript_status == TStatus.PENDING:
        return "Transcript pending."
    return "No transcript (Twilio only transcribes messages of 2 to 120 seconds): listen to the recording."


def _incident_details(record: CallRecord) -> str:
    who = "known customer" if record.caller_verified else "unverified caller"
    lines = [
        f"Voicemail from {caller_label(record)} ({record.from_number}, {who}) on {record.line.name} "
        f"({record.line.number}).",
        f"Reference: {record.reference}",
    ]
    if record.menu_digit is not None:
        option = record_menu_option(record)
        lines.append(f"Menu choice: {record.menu_digit}" + (f" ({option.label})" if option else ""))
    lines += [
        "",
        "Transcript:",
        _transcript_text(record),
        "",
        f"Recording ({record.recording_duration} s): {settings.PUBLIC_BASE_URL}{call_recording_path(record)}",
    ]
    return "\n".join(lines)


def _ack_timeout(incident: Incident) -> timedelta:
    policy = incident.policy
    if policy is not None and policy.ack_timeout:
        return policy.ack_timeout
    return DEFAULT_REPEAT_CALL_ACK_TIMEOUT


def _voicemail_join(record: CallRecord, incident: Incident, now: datetime, message: str) -> None:
    """Attach the voicemail to an incident it did not open, with a CALL entry that links the recording."""
    record.incident = incident
    record.incident_created = False
    timeline.timeline_record(
        incident=incident,
        kind=TimelineEvent.Kind.CALL,
        at=now,
        message=message,
        data={
            "call_id": record.pk,
            "call_sid": record.call_sid,
            "reference": record.reference,
            "recording_path": call_recording_path(record),
        },
    )


def _repeat_call_record(record: CallRecord, incident: Incident, now: datetime) -> None:
    """A further voicemail from a number whose incident is still open joins that incident."""
    _voicemail_join(
        record,
        incident,
        now,
        f"Another call from {caller_label(record)} ({record.from_number}), reference "
        f"{record.reference}: {record.recording_duration} s voicemail. Transcript: {_transcript_text(record)}",
    )
    incident.refresh_from_db()
    if (
        incident.status == Incident.Status.ACKNOWLEDGED
        and incident.acknowledged_at is not None
        and now - incident.acknowledged_at >= _ack_timeout(incident)
    ):
        # The customer is still waiting long after someone said they were on it: page again
        # from the first step rather than escalating past the person who acknowledged.
        services.incident_retrigger(
            incident=incident,
            via=TimelineEvent.Via.SYSTEM,
            now=now,
            reason=f"Re-triggered: {caller_label(record)} called again (reference {record.reference}) "
            f"{int((now - incident.acknowledged_at).total_seconds() // 60)} min after the acknowledgement.",
        )


def _line_flooded(record: CallRecord, now: datetime) -> bool:
    """True when the line has opened its budget of new incidents in the last hour."""
    limit = settings.BACKSTOP_PHONE_NEW_INCIDENTS_PER_LINE_PER_HOUR
    if not limit:
        return False
    opened = (
        CallRecord.objects.filter(line_id=record.line_id, incident_created=True, started_at__gte=now - RATE_WINDOW)
        .exclude(pk=record.pk)
        .count()
    )
    return opened >= limit


def _flood_join(record: CallRecord, team: Team | None, now: datetime) -> None:
    """Add the voicemail to the line's open "call flood" incident, opening it for the first one."""
    line = record.line
    dedup_key = f"call-flood:{line.pk}"
    incident = incidents_selectors.incident_open_get(team=team, dedup_key=dedup_key)
    if incident is None:
        limit = settings.BACKSTOP_PHONE_NEW_INCIDENTS_PER_LINE_PER_HOUR
        incident = services.incident_trigger(
            team=team,
            title=f"Call flood on {line.name}: more than {limit} new callers in an hour",
            details=(
                f"{line.name} ({line.number}) opened {limit} incidents from unverified callers within an hour. "
                "Further voicemails from numbers without an open incident are collected here; known customers "
                "(attested caller ID) still open their own incidents. Check the call log for spoofed numbers."
            ),
            severity=Incident.Severity.CRITICAL,
            urgency=Incident.Urgency.HIGH,
            source=Incident.Source.PHONE,
            dedup_key=dedup_key,
            payload={"call_flood": True, "line": {"id": line.pk, "name": line.name, "number": line.number}},
            policy=record_policy(record),
            via=TimelineEvent.Via.SYSTEM,
            now=now,
        ).incident
    _voicemail_join(
        record,
        incident,
        now,
        f"Call flood: voicemail from {caller_label(record)} ({record.from_number}, unverified), reference "
        f"{record.reference}, {record.recording_duration} s. Transcript: {_transcript_text(record)}",
    )


def _incident_ensure(record: CallRecord, now: datetime) -> None:
    """Open the call's incident (or join the caller's open one) once; the record is locked."""
    if record.incident_id is not None or record.line_id is None:
        return
    if record.recording_duration is None or record.recording_duration < MIN_RECORDING_SECONDS:
        return
    team = call_team(record)
    dedup_key = f"call:{record.from_number}"
    existing = incidents_selectors.incident_open_get(team=team, dedup_key=dedup_key)
    flooded = existing is None and not record.caller_verified and _line_flooded(record, now)
    if existing is not None:
        _repeat_call_record(record, existing, now)
    elif flooded:
        _flood_join(record, team, now)
    else:
        result = services.incident_trigger(
            team=team,
            title=f"Voicemail from {caller_label(record)} on {record.line.name}",
            details=_incident_details(record),
            severity=Incident.Severity.CRITICAL,
            urgency=Incident.Urgency.HIGH,
            source=Incident.Source.PHONE,
            dedup_key=dedup_key,
            payload=record_incident_payload(record),
            links=[{"href": settings.PUBLIC_BASE_URL + call_recording_path(record), "text": "Listen to the voicemail"}],
            policy=record_policy(record),
            via=TimelineEvent.Via.SYSTEM,
            now=now,
        )
        if result.created:
            record.incident = result.incident
            record.incident_created = True
        else:  # another call from this number opened it a moment ago
            _repeat_call_record(record, result.incident, now)
    record.outcome = Outcome.VOICEMAIL
    record_event_add(record, "incident", now, incident_id=record.incident_id, created=record.incident_created)
    metrics.phone_call(outcome=Outcome.VOICEMAIL)
    attempts = connect_attempts_describe(record)
    if attempts and record.incident is not None:
        timeline.timeline_record(
            incident=record.incident,
            kind=TimelineEvent.Kind.CALL,
            at=now,
            message=f"Before leaving the voicemail {record.reference}, the caller asked to be connected; nobody "
            f"took the call. Rang: {attempts}.",
            data={"call_id": record.pk, "reference": record.reference},
        )
    # No texts to the numbers of a flood: they are likely spoofed, and each text costs money.
    if record.line.sms_confirmation and not record.sms_status and not record.simulated and not flooded:
        record.sms_status = "queued"
        call_id = record.pk

        transaction.on_commit(lambda: publish.sms_confirmation_enqueue(call_id), robust=True)


def _incident_refresh(record: CallRecord, now: datetime) -> None:
    """Bring the incident up to date with a piece that arrived after it opened."""
    incident = record.incident
    if incident is None:
        return
    if record.incident_created:
        payload = {**(incident.payload or {}), **record_incident_payload(record)}
        Incident.objects.filter(pk=incident.pk).update(details=_incident_details(record), payload=payload)
    timeline.timeline_record(
        incident=incident,
        kind=TimelineEvent.Kind.CALL,
        at=now,
        message=f"Transcript of call {record.reference}: {_transcript_text(record)}",
        data={"call_id": record.pk, "transcript_status": record.transcript_status},
    )


# ------------------------------------------------------------------------------ services


def call_start(
    *,
    line: PhoneLine | None,
    call_sid: str,
    from_number: str,
    to_number: str,
    now: datetime | None = None,
    simulated: bool = False,
    stir_verstat: str = "",
) -> CallRecord:
    """Log an incoming call and decide whether it may leave a message (see CallRecord.outcome).

    Idempotent on call_sid: Twilio retrying the incoming webhook gets the first decision.
    `stir_verstat` is Twilio's StirVerstat parameter; only full attestation makes a caller verified.
    """
    now = now or timezone.now()
    from_number = phone_normalize(from_number)
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is not None:
            record_event_add(record, "incoming_repeat", now)
            record.save(update_fields=["events"])
            return record
        contact = caller_identify(number=from_number)
        verified = contact is not None and (stir_verstat or "").strip() == ATTESTED
        record = CallRecord(
            call_sid=call_sid,
            line=line,
            from_number=from_number,
            to_number=phone_normalize(to_number),
            started_at=now,
            customer_contact=contact,
            caller_verified=verified,
            simulated=simulated,
        )
        since = now - RATE_WINDOW
        if line is None or not line.enabled:
            record.outcome = Outcome.NOT_IN_SERVICE
        elif BlockedNumber.objects.filter(number=from_number).exists():
            record.outcome = Outcome.BLOCKED
        elif (
            line.max_calls_per_number_per_hour
            and CallRecord.objects.filter(
                line=line, from_number=from_number, started_at__gte=since, caller_verified=verified
            ).count()
            >= line.max_calls_per_number_per_hour
        ):
            # Every call counts here, refused ones included: a number that keeps dialling stays out. Attested
            # calls of a known customer are counted apart, so calls spoofing their number cannot use up theirs.
            record.outcome = Outcome.RATE_LIMITED
        elif (
            not verified
            and line.max_calls_per_line_per_hour
            and CallRecord.objects.filter(line=line, started_at__gte=since)
            .exclude(outcome__in=[Outcome.BLOCKED, Outcome.RATE_LIMITED])
            .count()
            >= line.max_calls_per_line_per_hour
        ):
            # Only calls that got through count: refused floods must not lock everyone else out; and a
            # known customer's attested call is never refused for the line's load.
            record.outcome = Outcome.RATE_LIMITED
        record_event_add(record, "incoming", now, outcome=record.outcome, stir_verstat=(stir_verstat or "")[:40])
        metrics.phone_call(outcome="answered" if record.outcome == Outcome.IN_PROGRESS else record.outcome)
        if record.outcome != Outcome.IN_PROGRESS:
            record.ended_at = now
            logger.info("Call %s refused: %s", call_sid, record.outcome)
        try:
            with transaction.atomic():
                record.save()
        except IntegrityError:  # the same CallSid raced us in
            return CallRecord.objects.get(call_sid=call_sid)
    return record


def call_menu_choice(*, call_sid: str, digits: str, now: datetime | None = None) -> PhoneMenuOption | None:
    """Route the call to the team of the menu option pressed; None for an unknown digit."""
    now = now or timezone.now()
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is None or record.line_id is None:
            logger.warning("Menu choice for unknown call %s", call_sid)
            return None
        option = None
        if digits.isdigit() and len(digits) == 1:
            option = record.line.menu_options.select_related("team", "policy").filter(digit=int(digits)).first()
        record_event_add(record, "menu", now, digits=digits, valid=option is not None)
        fields = ["events"]
        if option is not None and record.incident_id is None:
            record.menu_digit, record.menu_team = option.digit, option.team
            fields += ["menu_digit", "menu_team"]
        record.save(update_fields=fields)
    return option


def call_recording_received(
    *,
    call_sid: str,
    recording_sid: str,
    recording_url: str,
    duration: int | str | None,
    now: datetime | None = None,
    status: str = "completed",
    source: str = "action",
) -> CallRecord | None:
    """The <Record> action or the recording status callback: store it, open the incident if due."""
    now = now or timezone.now()
    duration = duration_parse(duration)
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is None:
            logger.warning("Recording %s for unknown call %s", recording_sid, call_sid)
            return None
        record_event_add(
            record, f"recording_{source}", now, recording_sid=recording_sid, status=status, duration=duration
        )
        if status in ("", "completed") and recording_url and recording_sid:
            if not record.recording_sid or record.recording_sid == recording_sid:
                record.recording_sid, record.recording_url = recording_sid, recording_url
                if duration is not None:
                    record.recording_duration = max(duration, record.recording_duration or 0)
            else:
                logger.warning("Call %s: second recording %s ignored", call_sid, recording_sid)
        if (
            record.recording_duration is not None
            and MIN_RECORDING_SECONDS <= record.recording_duration <= MAX_TRANSCRIBED_SECONDS
            and record.transcript_status == TStatus.NONE
        ):
            record.transcript_status = TStatus.PENDING
        if record.outcome in (Outcome.IN_PROGRESS, Outcome.HUNG_UP, Outcome.TOO_SHORT):
            _incident_ensure(record, now)
            if (
                record.incident_id is None
                and record.recording_duration is not None
                and record.recording_duration < MIN_RECORDING_SECONDS
            ):
                record.outcome = Outcome.TOO_SHORT
        record.save()
    return record


def call_transcription_received(
    *,
    call_sid: str,
    text: str,
    status: str,
    now: datetime | None = None,
    recording_sid: str = "",
    recording_url: str = "",
) -> CallRecord | None:
    now = now or timezone.now()
    status = (status or "").lower()
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is None:
            logger.warning("Transcription for unknown call %s", call_sid)
            return None
        record_event_add(record, "transcription", now, status=status, chars=len(text or ""))
        if recording_sid and recording_url and not record.recording_sid:
            record.recording_sid, record.recording_url = recording_sid, recording_url
        before = (record.transcript_status, record.transcript)
        if status == "completed":
            record.transcript_status, record.transcript = TStatus.COMPLETED, (text or "").strip()
        elif status == "failed" and record.transcript_status != TStatus.COMPLETED:
            record.transcript_status = TStatus.FAILED
        else:
            logger.warning("Call %s: transcription with status %r ignored", call_sid, status)
        if (record.transcript_status, record.transcript) != before:
            _incident_refresh(record, now)
        record.save()
    return record


def call_status_received(
    *,
    call_sid: str,
    call_status: str,
    now: datetime | None = None,
    duration: int | str | None = None,
) -> CallRecord | None:
    now = now or timezone.now()
    call_status = (call_status or "").lower()
    with transaction.atomic():
        record = record_lock(call_sid)
        if record is None:
            logger.warning("Status %r for unknown call %s", call_status, call_sid)
            return None
        record_event_add(record, "status", now, call_status=call_status, duration=duration_parse(duration))
        record.call_status = call_status[:20]
        if call_status in TERMINAL_CALL_STATUSES:
            record.ended_at = record.ended_at or now
            if record.outcome == Outcome.IN_PROGRESS:
                # A recording reported later still upgrades this to a voicemail.
                short = record.recording_duration is not None and record.recording_duration < MIN_RECORDING_SECONDS
                record.outcome = Outcome.TOO_SHORT if short else Outcome.HUNG_UP
        record.save()
    return record


# -------------------------------------------------------------------------- SMS confirmation


def call_sms_confirmation_send(*, call_id: int) -> str:
    """Text the caller their reference, from the line's number. At most once: a crash mid-send leaves
    'sending'. Through the paging channels, so without Twilio it lands in the demo's outbox."""
    with transaction.atomic():
        record = CallRecord.objects.select_for_update(of=("self",)).select_related("line").filter(pk=call_id).first()
        if record is None or record.sms_status != "queued":
            return record.sms_status if record else "missing"
        record.sms_status = "sending"
        record.save(update_fields=["sms_status"])
    body = (
        f"{record.line.name}: we received your message and paged the engineer on call. "
        f"Your reference is {record.reference}."
    )
    message = OutgoingMessage(
        channel="sms",
        to=record.from_number,
        body=body,
        incident_id=record.incident_id,
        kind="notice",
        extra={"from_number": record.line.number},
    )
    status, sid = "failed", ""
    try:
        sid = channel_for("sms").send(message).provider_id
        status = "sent"
    except ChannelError as exc:
        logger.warning("SMS confirmation for call %s failed: %s", record.call_sid, exc)
    CallRecord.objects.filter(pk=call_id).update(sms_status=status, sms_sid=sid)
    return status
