"""Escalation policies: ordered steps with targets and delays, repeated N times."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q


class EscalationPolicy(models.Model):
    team = models.ForeignKey("rotations.Team", on_delete=models.CASCADE, related_name="escalation_policies")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    repeat = models.PositiveIntegerField(
        null=True, blank=True, default=0, help_text="Extra passes through all steps; empty = repeat until acknowledged"
    )
    ack_timeout = models.DurationField(
        null=True, blank=True, help_text="An acknowledged, unresolved incident re-triggers after this"
    )
    auto_resolve_after = models.DurationField(null=True, blank=True)
    skip_empty_steps = models.BooleanField(
        default=False, help_text="Skip a step that resolves to nobody instead of waiting out its delay"
    )
    reassign_on_handover = models.BooleanField(
        default=True, help_text="Open incidents follow the rotation to the incoming on-call"
    )
    # {"time_zone", "days" (0 = Monday), "start", "end" ("HH:MM")}: see escalations.support_hours.
    support_hours = models.JSONField(
        default=dict, blank=True, help_text="Low-urgency incidents outside these hours wait for them; empty = always"
    )
    raise_urgency_after = models.DurationField(
        null=True, blank=True, help_text="A low-urgency incident unacknowledged this long becomes high urgency"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team_id", "name"]
        verbose_name_plural = "escalation policies"
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="policy_name_unique_per_team")]

    def __str__(self) -> str:
        return f"{self.team}: {self.name}"


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    delay = models.DurationField(
        default=timedelta(minutes=5), help_text="Wait this long for an acknowledgement before the next step"
    )

    class Meta:
        ordering = ["policy_id", "order"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "order"], name="step_order_unique_per_policy"),
            models.CheckConstraint(condition=Q(delay__gte=timedelta(0)), name="step_delay_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Step {self.order + 1} of {self.policy}"


class EscalationTarget(models.Model):
    class Kind(models.TextChoices):
        POSITION = "position", "Rotation position"
        USER = "user", "Specific person"
        TEAM = "team", "Whole team"
        MANAGERS = "managers", "Team managers"

    step = models.ForeignKey(EscalationStep, on_delete=models.CASCADE, related_name="targets")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    position = models.CharField(max_length=40, blank=True, help_text="e.g. primary, secondary")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)

    class Meta:
        ordering = ["step_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    (Q(kind="position") & ~Q(position=""))
                    | (Q(kind="user") & Q(user__isnull=False))
                    | Q(kind__in=["team", "managers"])
                ),
                name="target_fields_match_kind",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.POSITION:
            return f"on-call {self.position}"
        if self.kind == self.Kind.USER:
            return str(self.user)
        return self.get_kind_display()
