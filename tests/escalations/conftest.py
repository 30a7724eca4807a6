import pytest

from escalations.delivery.channels.twilio import _build_client
from tests.escalations.slack_helpers import SLACK_SECRET
from tests.fakes.fake_twilio import FakeTwilio


@pytest.fixture
def fake_twilio(settings):
    """A fake Twilio API on 127.0.0.1:<random>, with the real SDK pointed at it (1 s client timeout)."""
    fake = FakeTwilio(seed=1234, hang_seconds=1.5).start()
    settings.TWILIO_API_BASE_URL = fake.base_url
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    _build_client.cache_clear()
    yield fake
    fake.stop()
    _build_client.cache_clear()


@pytest.fixture
def fake_slack(settings):
    """A fake Slack Web API on 127.0.0.1:<random>, with the real slack_sdk pointed at it."""
    from escalations.slack.client import _build
    from tests.fakes.fake_slack import FakeSlack

    fake = FakeSlack(token="xoxb-test-token").start()
    settings.BACKSTOP_SLACK_BOT_TOKEN = "xoxb-test-token"
    settings.BACKSTOP_SLACK_SIGNING_SECRET = SLACK_SECRET
    settings.BACKSTOP_SLACK_API_URL = fake.base_url
    settings.BACKSTOP_SLACK_TIMEOUT = 1
    _build.cache_clear()
    yield fake
    fake.stop()
    _build.cache_clear()
