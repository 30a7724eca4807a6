import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.factories import UserFactory
from tests.fakes.fake_pagerduty import FakePagerDuty

FIXTURES = Path(__file__).parent / "fixtures"
# The recorded accounts' comparison windows start here (8 weeks, across Europe/Berlin's change to CEST).
NOW = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def pagerduty_account() -> dict:
    return json.loads((FIXTURES / "pagerduty_account.json").read_text())


@pytest.fixture
def fake_pagerduty(pagerduty_account):
    fake = FakePagerDuty(pagerduty_account).start()
    yield fake
    fake.stop()


@pytest.fixture
def people(db):
    """The Backstop accounts the recorded PagerDuty users match by e-mail (Erin has none: she is invited)."""
    return {
        name: UserFactory(email=f"{name}@example.com", full_name=name.title())
        for name in ("alice", "bob", "carol", "dan")
    }


@pytest.fixture
def grafana_account() -> dict:
    return json.loads((FIXTURES / "grafana_oncall_account.json").read_text())


@pytest.fixture
def fake_grafana(grafana_account):
    from tests.fakes.fake_grafana_oncall import FakeGrafanaOnCall

    fake = FakeGrafanaOnCall(grafana_account).start()
    yield fake
    fake.stop()


@pytest.fixture
def opsgenie_account() -> dict:
    return json.loads((FIXTURES / "opsgenie_account.json").read_text())


@pytest.fixture
def fake_opsgenie(opsgenie_account):
    from tests.fakes.fake_opsgenie import FakeOpsgenie

    fake = FakeOpsgenie(opsgenie_account).start()
    yield fake
    fake.stop()
