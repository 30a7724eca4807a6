"""Pure validation of every intake format: no database, no services."""

import pytest

from escalations.intake import parsers
from tests.escalations.intake_payloads import (
    ROUTING_KEY,
    alertmanager_pagerduty,
    am_message,
    pdpyras_action,
    pdpyras_change,
    pdpyras_trigger,
)


def errors_of(fn, body):
    with pytest.raises(parsers.EventInvalid) as info:
        fn(body)
    return info.value.errors


def test_pdpyras_trigger_parses():
    event = parsers.pagerduty_event_parse(pdpyras_trigger(custom_details={"free": "3%"}, dedup_key="disk-db-1"))
    assert (event.action, event.summary, event.source, event.severity) == (
        "trigger",
        "Disk full on db-1",
        "db-1",
        "critical",
    )
    assert event.dedup_key == "disk-db-1"
    assert event.custom_details == {"free": "3%"}


def test_trigger_without_dedup_key_is_valid():
    assert parsers.pagerduty_event_parse(pdpyras_trigger()).dedup_key == ""


def test_unknown_keys_are_ignored():
    body = pdpyras_trigger()
    body["something_new"] = {"x": 1}
    body["payload"]["also_new"] = 3
    assert parsers.pagerduty_event_parse(body).summary == "Disk full on db-1"


def test_alertmanager_resolve_with_full_payload_parses():
    event = parsers.pagerduty_event_parse(alertmanager_pagerduty("resolve"))
    assert event.action == "resolve" and event.dedup_key == "9f8e" * 16


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b["payload"].pop("summary"), "'payload.summary' is missing or blank"),
        (lambda b: b["payload"].update(summary="   "), "'payload.summary' is missing or blank"),
        (lambda b: b["payload"].update(summary="x" * 1025), "'payload.summary' is too long (maximum 1024 characters)"),
        (lambda b: b["payload"].pop("source"), "'payload.source' is missing or blank"),
        (
            lambda b: b["payload"].update(severity="fatal"),
            "'payload.severity' is invalid (must be one of critical, error, warning, info)",
        ),
        (lambda b: b["payload"].pop("severity"), "'payload.severity' is missing or blank"),
        (lambda b: b.update(routing_key="short"), "Length of 'routing_key' is incorrect (should be 32 characters)"),
        (lambda b: b.update(routing_key="-" * 32), "'routing_key' cannot contain non-alphanumeric characters."),
        (lambda b: b.pop("routing_key"), "'routing_key' is missing or blank"),
        (lambda b: b.update(routing_key=12345), "'routing_key' must be a string"),
        (
            lambda b: b.update(event_action="explode"),
            "'event_action' is invalid (must be one of trigger, acknowledge, resolve)",
        ),
        (lambda b: b.update(payload="text"), "'payload' is missing or not an object"),
        (lambda b: b["payload"].update(summary=42), "'payload.summary' must be a string"),
        (lambda b: b["payload"].update(timestamp="yesterday"), "'payload.timestamp' is not a valid ISO 8601 timestamp"),
        (lambda b: b.update(links={"href": "x"}), "'links' must be an array"),
        (lambda b: b.update(links=[{"text": "no href"}]), "'links[0].href' is missing or not a string"),
        (lambda b: b.update(dedup_key=["a"]), "'dedup_key' must be a string"),
        (lambda b: b.update(dedup_key="k" * 256), "'dedup_key' is too long (maximum 255 characters)"),
    ],
)
def test_trigger_validation_errors(mutate, expected):
    body = pdpyras_trigger()
    mutate(body)
    assert expected in errors_of(parsers.pagerduty_event_parse, body)


def test_every_error_is_reported_at_once():
    body = pdpyras_trigger(routing_key="x", severity="bad")
    del body["payload"]["source"]
    assert errors_of(parsers.pagerduty_event_parse, body) == [
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        "'payload.source' is missing or blank",
        "'payload.severity' is invalid (must be one of critical, error, warning, info)",
    ]


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_ack_resolve_require_dedup_key(action):
    body = pdpyras_action(action, "k")
    del body["dedup_key"]
    assert "'dedup_key' is missing or blank" in errors_of(parsers.pagerduty_event_parse, body)


@pytest.mark.parametrize("body", [None, [], "trigger", 3, [pdpyras_trigger()]])
def test_non_object_bodies(body):
    assert errors_of(parsers.pagerduty_event_parse, body) == ["Event object must be a JSON object"]


def test_change_event_parse():
    change = parsers.pagerduty_change_parse(pdpyras_change(custom_details={"build": 7}))
    assert change.summary == "Deployed v1.2.3" and change.timestamp.isoformat() == "2026-03-02T09:00:00+00:00"
    assert "'payload.summary' is missing or blank" in errors_of(
        parsers.pagerduty_change_parse, {"routing_key": ROUTING_KEY, "payload": {}}
    )


def test_alertmanager_parse():
    message = parsers.alertmanager_parse(am_message())
    assert message.title == "HighLatency" and message.severity == "critical"
    assert message.dedup_key == 'backstop/{}/{severity="critical"}:{alertname="HighLatency"}'
    assert [a.ends_at for a in message.alerts] == [None, None]
    assert message.alerts[0].starts_at.isoformat() == "2026-03-02T08:55:00.123456+00:00"


def test_alertmanager_title_prefers_summary_annotation_and_maps_severity():
    body = am_message()
    body["commonAnnotations"]["summary"] = "API is slow"
    body["commonLabels"]["severity"] = "warn"
    message = parsers.alertmanager_parse(body)
    assert (message.title, message.severity) == ("API is slow", "warning")


def test_alertmanager_long_group_key_is_hashed():
    body = am_message()
    body["groupKey"] = "x" * 600
    key = parsers.alertmanager_parse(body).dedup_key
    assert key.startswith("alertmanager:") and len(key) <= 255


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.update(version="3"), "'version' must be \"4\" (Alertmanager webhook payload version 4)"),
        (lambda b: b.pop("groupKey"), "'groupKey' is missing or blank"),
        (lambda b: b.update(status="burning"), "'status' must be firing or resolved"),
        (lambda b: b.update(alerts=[]), "'alerts' must be a non-empty array"),
        (lambda b: b["alerts"][1].update(status="on"), "'alerts[1].status' must be firing or resolved"),
        (lambda b: b["alerts"][0].update(labels={"a": 1}), "'alerts[0].labels' must be an object of strings"),
        (lambda b: b["alerts"][0].update(startsAt="soon"), "'alerts[0].startsAt' is not a valid ISO 8601 timestamp"),
        (lambda b: b.update(truncatedAlerts=-1), "'truncatedAlerts' must be a non-negative integer"),
        (lambda b: b.update(commonLabels=[]), "'commonLabels' must be an object of strings"),
    ],
)
def test_alertmanager_validation(mutate, expected):
    body = am_message()
    mutate(body)
    assert expected in errors_of(parsers.alertmanager_parse, body)


def test_generic_parse():
    event = parsers.generic_parse({"summary": "Backup failed", "details": {"rc": 2}, "severity": "warning"})
    assert (event.action, event.severity, event.dedup_key) == ("trigger", "warning", "")
    assert '"rc": 2' in event.details
    assert "'summary' is missing or blank" in errors_of(parsers.generic_parse, {"details": "x"})
    assert "'dedup_key' is missing or blank" in errors_of(parsers.generic_parse, {"action": "resolve"})
    assert "'severity' must be one of critical, error, warning, info" in errors_of(
        parsers.generic_parse, {"summary": "s", "severity": "meh"}
    )
