"""Shift swap requests: asking a colleague to take one's shifts; only their acceptance makes an override."""

from django.conf import settings
from django.db import models


class SwapRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for an answer"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"

    rotation = models.ForeignKey("rotations.Rotation", on_delete=models.CASCADE, related_name="swap_requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="swaps_asked")
    taker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="swaps_offered")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    override = models.ForeignKey(
        "rotations.Override", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["start", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="swap_request_end_after_start"),
            models.CheckConstraint(
                condition=~models.Q(requester=models.F("taker")), name="swap_request_not_to_oneself"
            ),
        ]
        indexes = [models.Index(fields=["taker", "status"], name="swap_request_taker_idx")]

    def __str__(self) -> str:
        return f"{self.requester} → {self.taker} {self.start:%Y-%m-%d %H:%M} ({self.status})"
