"""Inbound Slack requests signed exactly as Slack signs them, and the published tasks, recorded."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from tests.fakes.fake_slack import FakeSlack, sign

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def slack_post(
    client, path: str, fields: dict, *, timestamp: int | None = None, secret: str = SLACK_SECRET, retry=None
):
    body = urlencode(fields)
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(secret, body, ts)}
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded", headers=headers)


def click(
    client, *, incident_id: int, slack_user: str, action: str = "incident_acknowledge", trigger: str = "t-1", **kw
):
    payload = {
        "type": "block_actions",
        "trigger_id": trigger,
        "user": {"id": slack_user},
        "channel": {"id": "C0PAYMENTS"},
        "actions": [{"action_id": action, "value": str(incident_id), "action_ts": "1700000000.1"}],
    }
    return slack_post(client, "/slack/interactivity/", {"payload": json.dumps(payload)}, **kw)


@pytest.fixture
def fake_slack(settings):
    """A fake Slack Web API on 127.0.0.1:<random>, with the real slack_sdk pointed at it."""
    from escalations.slack.client import _build

    fake = FakeSlack(token="xoxb-test-token").start()
    settings.BACKSTOP_SLACK_BOT_TOKEN = "xoxb-test-token"
    settings.BACKSTOP_SLACK_SIGNING_SECRET = SLACK_SECRET
    settings.BACKSTOP_SLACK_API_URL = fake.base_url
    settings.BACKSTOP_SLACK_TIMEOUT = 1
    _build.cache_clear()
    yield fake
    fake.stop()
    _build.cache_clear()
