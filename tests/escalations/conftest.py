from datetime import timedelta

import pytest

from escalations.delivery.channels.twilio import _build_client
from tests.escalations.slack_helpers import fake_slack  # noqa: F401 (a fixture, shared with tests/portal)
from tests.fakes.fake_twilio import FakeTwilio


@pytest.fixture
def fake_twilio(settings):
    """A fake Twilio API on 127.0.0.1:<random>, with the real SDK pointed at it (1 s client timeout)."""
    fake = FakeTwilio(seed=1234, hang_seconds=1.5).start()
    settings.TWILIO_API_BASE_URL = fake.base_url
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    # Every call is settled inside its batch (a loaded machine may answer slowly): a send thread settling
    # a late answer has its own database connection, which cannot see a test's uncommitted rows.
    settings.BACKSTOP_DELIVERY_SEND_WAIT = timedelta(seconds=30)
    _build_client.cache_clear()
    yield fake
    fake.stop()
    _build_client.cache_clear()
