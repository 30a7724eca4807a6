"""JSON log lines: one object per event that matters, with the ids to correlate it, and still no phone
numbers, transcripts or tokens (config.log_json, escalations.incidents.events)."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from config.log_json import JsonFormatter, RequestIdFilter
from config.log_redaction import RedactFilter
from escalations.delivery.deliver import page_deliver
from escalations.incidents import services
from escalations.models import TimelineEvent
from tests.factories import IntegrationFactory, PageFactory, TeamFactory

pytestmark = pytest.mark.django_db
NUMBER = "+15558675309"


@pytest.fixture
def lines():
    """The console handler as configured (ids, redaction, JSON) on the loggers under test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(n) for n in ("backstop.events", "escalations")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_settings_choose_the_format_and_keep_redaction():
    from config.settings import base

    assert base.LOGGING["handlers"]["console"]["formatter"] in ("plain", "json")
    assert base.LOGGING["handlers"]["console"]["filters"] == ["ids", "redact"]
    assert base.LOGGING["formatters"]["json"]["()"] == "config.log_json.JsonFormatter"


def test_incident_lifecycle_lines_carry_event_and_incident_id(lines, django_capture_on_commit_callbacks):
    team = TeamFactory(slug="payments")
    with django_capture_on_commit_callbacks(execute=True):
        incident = services.incident_trigger(team=team, title=f"Caller {NUMBER} reports checkout down").incident
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_acknowledge(incident=incident, by=None, via=TimelineEvent.Via.API)
    events = {line["event"]: line for line in lines() if "event" in line}
    opened = events["incident_opened"]
    assert opened["incident_id"] == incident.pk
    assert opened["team"] == "payments"
    assert opened["level"] == "INFO" and opened["logger"] == "backstop.events"
    assert NUMBER not in json.dumps(lines())
    assert "[phone]" in opened["message"]
    assert events["incident_acknowledged"]["incident_id"] == incident.pk


def test_page_sent_and_failed_lines_carry_page_ids_and_provider_code(
    lines, fake_twilio, django_capture_on_commit_callbacks
):
    now = timezone.now()
    page = PageFactory(destination=NUMBER, due_at=now - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert page_deliver(page_id=page.pk, now=now).result == "sent"
    fake_twilio.plan("400")
    refused = PageFactory(destination=NUMBER, due_at=now)
    with django_capture_on_commit_callbacks(execute=True):
        assert page_deliver(page_id=refused.pk, now=now).result == "failed"
    by_event = {}
    for line in lines():
        by_event.setdefault(line.get("event"), []).append(line)
    [sent] = by_event["page_sent"]
    assert (sent["page_id"], sent["incident_id"], sent["channel"]) == (page.pk, page.incident_id, "sms")
    [failed] = by_event["page_failed"]
    assert failed["page_id"] == refused.pk and failed["level"] == "WARNING"
    assert failed["code"].isdigit() and failed["retry"] is False
    assert NUMBER not in json.dumps(lines())
    assert NUMBER.removeprefix("+") not in json.dumps(lines())


def test_request_id_correlates_an_intake_rejection_with_its_response(client, lines):
    integration = IntegrationFactory(kind="generic")
    response = client.post(
        f"/integrations/generic/{integration.key}/",
        data="not json",
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-7f3a9c2e",
    )
    assert response.status_code == 400
    assert response["X-Request-ID"] == "req-7f3a9c2e"
    [rejected] = [line for line in lines() if line.get("event") == "intake_rejected"]
    assert rejected["request_id"] == "req-7f3a9c2e"
    assert (rejected["kind"], rejected["status"]) == ("generic", 400)
    assert integration.key not in json.dumps(lines())
    # A made-up id from the outside is replaced, not logged as given.
    other = client.get("/healthz", HTTP_X_REQUEST_ID="<script>")
    assert other["X-Request-ID"] != "<script>" and len(other["X-Request-ID"]) == 32


def test_extras_are_redacted_too():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.note = f"call {NUMBER} with token bst_abcdefghijklmnopqrst"
    line = json.loads(JsonFormatter().format(record))
    assert NUMBER not in line["note"] and "bst_abcdefghijklmnopqrst" not in line["note"]
