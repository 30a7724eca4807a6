"""Bodies exactly as real senders build them (pdpyras EventsAPISession / ChangeEventsAPISession,
Alertmanager's pagerduty_configs and webhook_configs), so tests exercise the real wire shape."""

import copy

ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def pdpyras_trigger(
    routing_key=ROUTING_KEY,
    summary="Disk full on db-1",
    source="db-1",
    dedup_key=None,
    severity="critical",
    custom_details=None,
    links=None,
):
    # pdpyras EventsAPISession.trigger(): payload {summary, source, severity}, dedup_key only if a str,
    # then post() adds routing_key to the JSON body.
    event = {"event_action": "trigger", "payload": {"summary": summary, "source": source, "severity": severity}}
    if custom_details is not None:
        event["payload"]["custom_details"] = custom_details
    if links:
        event["links"] = links
    if isinstance(dedup_key, str):
        event["dedup_key"] = dedup_key
    event["routing_key"] = routing_key
    return event


def pdpyras_action(action, dedup_key, routing_key=ROUTING_KEY):
    # pdpyras acknowledge()/resolve(): send_event(action, dedup_key=dedup_key)
    return {"event_action": action, "dedup_key": dedup_key, "routing_key": routing_key}


def pdpyras_change(
    routing_key=ROUTING_KEY,
    summary="Deployed v1.2.3",
    source="ci",
    timestamp="2026-03-02T09:00:00Z",
    custom_details=None,
    links=None,
):
    event = {"routing_key": routing_key, "payload": {"summary": summary, "timestamp": timestamp}}
    if source:
        event["payload"]["source"] = source
    if custom_details is not None:
        event["payload"]["custom_details"] = custom_details
    if links:
        event["links"] = links
    return event


def alertmanager_pagerduty(action, routing_key=ROUTING_KEY, dedup_key="9f8e" * 16):
    """Alertmanager's notify/pagerduty v2 message: resolve carries the full payload too."""
    return {
        "routing_key": routing_key,
        "dedup_key": dedup_key,
        "event_action": action,
        "payload": {
            "summary": "[FIRING:1] HighLatency api (page)",
            "source": "Alertmanager",
            "severity": "critical",
            "custom_details": {
                "firing": "Labels:\n - alertname = HighLatency\n",
                "num_firing": "1" if action == "trigger" else "0",
                "num_resolved": "0" if action == "trigger" else "1",
                "resolved": "",
            },
        },
        "images": [],
        "links": [{"href": "http://prometheus:9090/graph?g0.expr=up", "text": "Prometheus"}],
        "client": "Alertmanager",
        "client_url": "http://alertmanager:9093/#/alerts?receiver=pd",
    }


def _am_alert(name, instance, status, fingerprint, ends="0001-01-01T00:00:00Z"):
    return {
        "status": status,
        "labels": {"alertname": name, "instance": instance, "job": "api", "severity": "critical"},
        "annotations": {"summary": f"{name} on {instance}", "description": "p99 over 2s for 5m"},
        "startsAt": "2026-03-02T08:55:00.123456789Z",
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=histogram_quantile",
        "fingerprint": fingerprint,
    }


AM_GROUP = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="HighLatency"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "backstop",
    "groupLabels": {"alertname": "HighLatency"},
    "commonLabels": {"alertname": "HighLatency", "job": "api", "severity": "critical"},
    "commonAnnotations": {"description": "p99 over 2s for 5m"},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        _am_alert("HighLatency", "api-1:9100", "firing", "a1b2c3d4e5f60718"),
        _am_alert("HighLatency", "api-2:9100", "firing", "b1b2c3d4e5f60718"),
    ],
}


def am_message(statuses=("firing", "firing")):
    """The group with alerts api-1/api-2 in the given statuses (resolved ones get an endsAt)."""
    body = copy.deepcopy(AM_GROUP)
    for alert, status in zip(body["alerts"], statuses, strict=True):
        alert["status"] = status
        if status == "resolved":
            alert["endsAt"] = "2026-03-02T09:10:00Z"
    body["status"] = "firing" if "firing" in statuses else "resolved"
    return body
