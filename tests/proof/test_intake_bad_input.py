"""Malformed bodies on every intake kind: 400/413 with a clear JSON message, and nothing partially stored."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache

from escalations.models import Alert, ChangeEvent, InboxEvent, Incident, TimelineEvent
from tests.escalations.inbox_helpers import drain
from tests.escalations.intake_payloads import ROUTING_KEY, am_message, pdpyras_trigger
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db

KINDS = {
    # kind: (integration kind, url for key, a valid body, fields to give the wrong type)
    "pagerduty": (
        "pagerduty",
        lambda key: "/integrations/pagerduty/v2/enqueue",
        pdpyras_trigger,
        {"event_action": 5, "payload": "disk full", "dedup_key": ["x"]},
    ),
    "alertmanager": (
        "alertmanager",
        lambda key: f"/integrations/alertmanager/{key}/",
        am_message,
        {"alerts": "firing", "status": 5, "groupKey": {"a": 1}},
    ),
    "generic": (
        "generic",
        lambda key: f"/integrations/generic/{key}/",
        lambda: {"summary": "Disk full"},
        {"summary": ["x"], "severity": 5, "action": {"a": 1}},
    ),
}


def _cases(kind: str) -> list[tuple[str, object]]:
    valid = json.dumps(KINDS[kind][2]())
    cases = [
        ("truncated", valid[: len(valid) // 2]),
        ("array", f"[{valid}]"),
        ("string", json.dumps("trigger")),
        ("null_byte_raw", valid[:-1] + "\x00}"),
        ("invalid_utf8", valid.encode()[:-1] + b"\xff\xfe}"),
        ("deep_nesting", "[" * 100_000 + "]" * 100_000),
        ("deep_object", '{"a":' * 50_000 + "1" + "}" * 50_000),
        ("empty", ""),
        ("xml", "<event><summary>down</summary></event>"),
    ]
    body = KINDS[kind][2]()
    for field, wrong in KINDS[kind][3].items():
        cases.append((f"wrong_type_{field}", json.dumps({**body, field: wrong})))
    return cases


CASES = [(kind, name, body) for kind in KINDS for name, body in _cases(kind)]


def _counts() -> dict:
    return {m.__name__: m.objects.count() for m in (Incident, Alert, TimelineEvent, ChangeEvent, InboxEvent)}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def _integration(team, kind):
    return IntegrationFactory(team=team, kind=KINDS[kind][0], key=ROUTING_KEY)


@pytest.mark.parametrize(("kind", "case", "body"), CASES, ids=[f"{k}-{n}" for k, n, _ in CASES])
def test_malformed_body_is_a_400_with_a_message_and_stores_nothing(client, team, kind, case, body):
    integration = _integration(team, kind)
    before = _counts()
    response = client.post(KINDS[kind][1](integration.key), body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    data = response.json()
    assert isinstance(data["message"], str) and data["message"]
    assert _counts() == before


@pytest.mark.parametrize("kind", KINDS)
def test_body_over_the_limit_is_a_413_and_stores_nothing(client, team, settings, kind):
    settings.BACKSTOP_INTAKE_MAX_BYTES = 2048
    integration = _integration(team, kind)
    body = {**KINDS[kind][2](), "padding": "x" * 4096}
    before = _counts()
    response = client.post(KINDS[kind][1](integration.key), json.dumps(body), content_type="application/json")
    assert response.status_code == 413
    assert "2048" in json.dumps(response.json())
    assert _counts() == before


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_keys_are_accepted(client, team, kind):
    integration = _integration(team, kind)
    body = {**KINDS[kind][2](), "x_unknown": {"nested": [1, 2]}, "zzz": None}
    response = client.post(KINDS[kind][1](integration.key), json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 202), response.content[:300]
    drain()
    assert Incident.objects.filter(team=team).count() == 1
