"""Every Prometheus counter and histogram Backstop records, and the one-line helpers that record them.

Labels are bounded by design: channels, statuses, provider error codes, integration kinds, outcomes and
urgencies are short fixed vocabularies. No incident, page or call id, phone number or team name is
ever a label here (state that depends on the database, such as open incidents per team, is computed at
scrape time by `escalations.monitoring.collectors`).

Processes: under gunicorn and Celery prefork every process writes its samples to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode, chosen by that variable being set
before this module is imported), and the process that answers a scrape reads all of them
(`escalations.monitoring.exposition`). Without the variable (the demo, the tests) the samples live in
this process's default registry.

Counters count what committed: helpers called inside a transaction defer to `on_commit`, so a rolled
back attempt is not counted.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.db import transaction
from prometheus_client import Counter, Histogram

# The operator's event lines (escalations.incidents.events writes the same logger after commits).
events_logger = logging.getLogger("backstop.events")

# Seconds: lateness is mostly sub-second (250 ms wake-up buckets) but a broken worker makes it minutes.
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
# Seconds from an incident opening to its acknowledgement or resolution.
RESPONSE_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)

PAGES = Counter(
    "backstop_pages",
    "Pages by channel and outcome of a delivery attempt (sent, failed, canceled)",
    ["channel", "status"],
)
PAGE_RETRIES = Counter("backstop_page_retries", "Delivery attempts that will be retried later", ["channel"])
PAGES_HELD = Counter(
    "backstop_pages_held",
    "Pages not sent on their own: bundled into another message or throttled",
    ["channel", "reason"],
)
PROVIDER_ERRORS = Counter(
    "backstop_provider_errors", "Provider answers that were errors, by provider error code", ["channel", "code"]
)
DELIVERY_LATENESS = Histogram(
    "backstop_delivery_lateness_seconds",
    "From a page falling due to its message being handed to the provider",
    ["channel"],
    buckets=LATENESS_BUCKETS,
)
STEP_LATENESS = Histogram(
    "backstop_step_lateness_seconds",
    "From an escalation step falling due to the engine reaching it",
    buckets=LATENESS_BUCKETS,
)
INTAKE_EVENTS = Counter(
    "backstop_intake_events", "Alert intake requests by integration kind and outcome", ["kind", "outcome"]
)
ACK_SECONDS = Histogram(
    "backstop_incident_ack_seconds", "From opening to acknowledgement", ["urgency"], buckets=RESPONSE_BUCKETS
)
RESOLVE_SECONDS = Histogram(
    "backstop_incident_resolve_seconds", "From opening to resolution", ["urgency"], buckets=RESPONSE_BUCKETS
)
INCIDENTS_OPENED = Counter("backstop_incidents_opened", "Incidents opened", ["urgency"])
PHONE_CALLS = Counter(
    "backstop_phone_calls",
    "Emergency-line calls: every incoming call by how it was let in (answered, blocked, rate_limited, "
    "not_in_service), and what answered calls became (voicemail, connected)",
    ["outcome"],
)
DEADMAN_PINGS = Counter("backstop_deadman_pings", "Dead man's switch runs by result", ["result"])

_R = TypeVar("_R")


def _after_commit(record: Callable[[], None]) -> None:
    transaction.on_commit(record)


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    if earlier is None:
        return None
    return max((later - earlier).total_seconds(), 0.0)


# --- delivery ---------------------------------------------------------------------------------------

_TWILIO_CODE = re.compile(r"\(code (\d{1,6})\)")
_HTTP_STATUS = re.compile(r"\b(?:Twilio|HTTP) (\d{3})\b")


def provider_error_code(detail: str) -> str:
    """A bounded label for a provider error: the provider's numeric code, else the HTTP status, else
    what kind of failure it was. Never the message itself (it may quote a phone number)."""
    if match := _TWILIO_CODE.search(detail):
        return match.group(1)
    if match := _HTTP_STATUS.search(detail):
        return f"http_{match.group(1)}"
    lowered = detail.lower()
    if "could not connect" in lowered:
        return "connect"
    if "no answer" in lowered or "timed out" in lowered or "timeout" in lowered:
        return "no_answer"
    return "other"


def deliveries_observe(attempts: Iterable[tuple[str, datetime | None, str, str, int]], *, now: datetime) -> None:
    """Outcomes of one batch of provider calls: (channel, due_at, result, detail, riders) per carrier
    page, with `result` one of DeliveryOutcome's (sent, retry, failed, unknown, error) and `riders` the
    pages bundled into its message. `now` is when the batch was handed to the provider. Called after the
    answers were recorded, outside any transaction."""
    for channel, due_at, result, detail, riders in attempts:
        if riders:
            PAGES_HELD.labels(channel, "bundled").inc(riders)
        if result == "sent":
            PAGES.labels(channel, "sent").inc()
            if (late := _seconds(now, due_at)) is not None:
                DELIVERY_LATENESS.labels(channel).observe(late)
            continue
        if result in ("retry", "failed", "unknown"):
            PROVIDER_ERRORS.labels(channel, provider_error_code(detail)).inc()
        if result == "retry":
            PAGE_RETRIES.labels(channel).inc()
        elif result == "failed":
            PAGES.labels(channel, "failed").inc()


def claims_observe(*, channel: str, result: str, count: int) -> None:
    """`count` pages a claim held back ("throttled"), once the claim's transaction commits."""
    if count:
        _after_commit(lambda: PAGES_HELD.labels(channel, result).inc(count))


def pages_canceled(*, channels: list[str]) -> None:
    """Pages a claim canceled because their incident closed, one channel each."""
    for channel in channels:
        _after_commit(lambda channel=channel: PAGES.labels(channel, "canceled").inc())  # type: ignore[misc]


# --- engine and incidents ---------------------------------------------------------------------------


def steps_observe(*, due_at: datetime | None, now: datetime, reached: int) -> None:
    """`reached` escalation steps were reached at `now` for an incident whose next action was due at
    `due_at` (inside the advancing transaction)."""
    late = _seconds(now, due_at)
    if reached and late is not None:
        _after_commit(lambda: _observe_times(STEP_LATENESS, late, reached))


def _observe_times(histogram: Histogram, value: float, times: int) -> None:
    for _ in range(times):
        histogram.observe(value)


def incident_opened(*, urgency: str) -> None:
    _after_commit(lambda: INCIDENTS_OPENED.labels(urgency).inc())


def incident_acknowledged(*, urgency: str, opened_at: datetime, now: datetime) -> None:
    if (took := _seconds(now, opened_at)) is not None:
        _after_commit(lambda: ACK_SECONDS.labels(urgency).observe(took))


def incident_resolved(*, urgency: str, opened_at: datetime, now: datetime) -> None:
    if (took := _seconds(now, opened_at)) is not None:
        _after_commit(lambda: RESOLVE_SECONDS.labels(urgency).observe(took))


# --- intake -----------------------------------------------------------------------------------------


def intake_outcome(status: int) -> str:
    if 200 <= status < 300:
        return "stored"
    if status == 429:
        return "rate_limited"
    return "rejected"


def intake_observe(*, kind: str, status: int) -> None:
    """An intake request answered with HTTP `status` (202: the event is stored). A refusal is also one
    `intake_rejected` event line (with the request id, config.log_json); rate-limited requests are only
    counted, so that a flood does not flood the logs too."""
    outcome = intake_outcome(status)
    INTAKE_EVENTS.labels(kind, outcome).inc()
    if outcome == "rejected":
        events_logger.info(
            "Intake refused a %s request: HTTP %s",
            kind,
            status,
            extra={"event": "intake_rejected", "kind": kind, "status": status},
        )


def intake_counted(kind: str | None = None) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Decorate an intake view (or its shared body) so each response is counted by its status: the
    integration kind is `kind`, or the view's own `kind` argument."""

    def decorate(view: Callable[..., _R]) -> Callable[..., _R]:
        signature = inspect.signature(view)

        @functools.wraps(view)
        def counted(*args: Any, **kwargs: Any) -> _R:
            response = view(*args, **kwargs)
            label = kind or str(signature.bind(*args, **kwargs).arguments.get("kind", "unknown"))
            intake_observe(kind=label, status=int(getattr(response, "status_code", 500)))
            return response

        return counted

    return decorate


# --- emergency line ---------------------------------------------------------------------------------


def phone_call(*, outcome: str) -> None:
    _after_commit(lambda: PHONE_CALLS.labels(outcome).inc())
