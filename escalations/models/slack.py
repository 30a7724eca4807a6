"""Slack: the one channel message per incident, and the inbound requests already taken."""

from django.db import models


class SlackIncidentMessage(models.Model):
    """The message in the team's Slack channel that shows an incident, updated in place.

    One row per incident (unique), so there is at most one message per incident. Syncs are
    serialized by a lease: whoever holds it calls Slack (outside any transaction); a sync that finds
    the lease held marks the row `dirty`, and the holder renders again before letting go, so the
    last state always reaches Slack and an older render never overwrites a newer one.
    """

    incident = models.OneToOneField("escalations.Incident", on_delete=models.CASCADE, related_name="slack_message")
    channel_id = models.CharField(max_length=20)
    ts = models.CharField(max_length=32, blank=True, help_text="Slack's id of the message; empty until posted")
    posting_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A post may have reached Slack since then without its ts stored: look in the channel first",
    )
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    dirty = models.BooleanField(default=False)
    rendered_hash = models.CharField(max_length=32, blank=True, help_text="What Slack shows now (blocks.fingerprint)")
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"#{self.incident_id} in {self.channel_id} ({self.ts or 'not posted'})"


class SlackInboundRequest(models.Model):
    """An interaction or command Slack sent, stored before the 200 and worked once, after it.

    `key` is Slack's own id of the interaction (`trigger_id`, `event_id`): a retried or replayed request
    finds its row and does nothing again.
    """

    key = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=20)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"
