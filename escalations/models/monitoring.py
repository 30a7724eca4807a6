"""The dead man's switch's last run: whether it pinged, and why not when it did not."""

from __future__ import annotations

from django.db import models


class SwitchPing(models.Model):
    """One row per switch (there is one, "deadman"): its last check and its last successful ping.

    The outside service pages when the pings stop, so what matters to an operator is when the last one
    went out and, when checks fail, which fact stopped it."""

    name = models.CharField(max_length=40, primary_key=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_pinged_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HTTP status of the last ping")
    # What the last check found: "pinged", "unhealthy", "ping failed", "not configured".
    last_result = models.CharField(max_length=20, blank=True)
    last_problems = models.JSONField(default=list, blank=True)
    pings = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.name
