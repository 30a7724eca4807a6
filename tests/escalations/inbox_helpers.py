"""Intake over HTTP stores events in the inbox; a worker applies them. Tests apply them explicitly."""

from escalations.intake import drain as intake_drain
from escalations.models import InboxEvent


def drain() -> int:
    """Apply every pending inbox event, as the worker's drain task would, and check none is left."""
    applied = intake_drain.inbox_drain()
    assert not InboxEvent.objects.filter(processed_at__isnull=True).exists()
    return applied


def post_and_drain(client, url, **kwargs):
    """POST like a sender, then let the drain apply what was accepted (nothing, for a refusal)."""
    response = client.post(url, **kwargs)
    drain()
    return response
