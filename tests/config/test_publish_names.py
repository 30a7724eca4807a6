"""Services publish by task name; a name nobody registered would raise KeyError only when work is published."""

import pytest
from celery import current_app

from escalations.delivery import publish as delivery_publish
from escalations.incidents import publish as incident_publish
from escalations.intake import kick
from escalations.phone import publish as phone_publish
from escalations.webhooks import publish as webhook_publish
from rotations.services import hooks

PUBLISHED = [
    delivery_publish.DELIVER_PAGE,
    delivery_publish.DELIVER_PAGES,
    incident_publish.INCIDENTS_ADVANCE,
    kick.INBOX_DRAIN,
    phone_publish.SMS_CONFIRMATION_SEND,
    hooks.ROSTER_GAP_CHECK_TEAMS,
    hooks.ROSTER_CHANGE_NOTICES,
    hooks.SWAP_REQUEST_NOTICE,
    webhook_publish.DELIVER,
    webhook_publish.SWEEP,
    webhook_publish.PURGE,
]


@pytest.mark.parametrize("name", PUBLISHED)
def test_every_published_task_name_is_registered_after_django_setup(name):
    # No autodiscovery here (web processes never run it): the apps' ready() must have registered them.
    assert name in current_app.tasks
