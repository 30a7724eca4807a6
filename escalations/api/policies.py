"""Escalation policies over the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from escalations.api.common import TeamField, TeamScopedViewSet, team_move_refuse
from escalations.models import (
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
)
from escalations.policies import services as policy_services

# --- escalation policies -------------------------------------------------------------------------


class EscalationTargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = EscalationTarget
        fields = ["id", "kind", "position", "user"]
        read_only_fields = ["id"]

    def validate(self, attrs):
        kind = attrs.get("kind")
        if kind == EscalationTarget.Kind.POSITION and not attrs.get("position"):
            raise serializers.ValidationError({"position": "A position target needs a position name."})
        if kind == EscalationTarget.Kind.USER and not attrs.get("user"):
            raise serializers.ValidationError({"user": "A user target needs a user."})
        return attrs


class EscalationStepSerializer(serializers.ModelSerializer):
    targets = EscalationTargetSerializer(many=True)
    delay = serializers.DurationField(min_value=timedelta(0), max_value=timedelta(days=7))

    class Meta:
        model = EscalationStep
        fields = ["id", "order", "delay", "targets"]
        read_only_fields = ["id", "order"]


class EscalationPolicySerializer(serializers.ModelSerializer):
    team = TeamField()
    steps = EscalationStepSerializer(many=True, required=False)

    class Meta:
        model = EscalationPolicy
        fields = [
            "id",
            "team",
            "name",
            "description",
            "repeat",
            "ack_timeout",
            "auto_resolve_after",
            "skip_empty_steps",
            "reassign_on_handover",
            "support_hours",
            "raise_urgency_after",
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []  # (team, name) uniqueness is checked by the policy services with a clear message
        extra_kwargs = {
            "support_hours": {
                "help_text": 'e.g. {"time_zone": "Europe/Berlin", "days": [0, 1, 2, 3, 4], "start": "09:00", '
                '"end": "17:00"} (0 = Monday; end may be 24:00); {} = always'
            },
        }

    def validate_support_hours(self, value):
        try:
            return policy_services.support_hours_clean(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["support_hours"]) from exc

    def validate_raise_urgency_after(self, value):
        if value is not None and value <= timedelta(0):
            raise serializers.ValidationError("Must be longer than zero, or null for never.")
        return value


def _steps_input(steps: list[dict[str, Any]]) -> list[policy_services.StepInput]:
    return [
        policy_services.StepInput(
            delay=step["delay"],
            targets=[
                policy_services.TargetInput(kind=t["kind"], position=t.get("position") or "", user=t.get("user"))
                for t in step["targets"]
            ],
        )
        for step in steps
    ]


def _current(policy: EscalationPolicy) -> dict[str, Any]:
    """The policy as the services take it, so a PATCH changes only the fields it sends."""
    return {
        "name": policy.name,
        "description": policy.description,
        "repeat": policy.repeat,
        "ack_timeout": policy.ack_timeout,
        "auto_resolve_after": policy.auto_resolve_after,
        "skip_empty_steps": policy.skip_empty_steps,
        "reassign_on_handover": policy.reassign_on_handover,
        "support_hours": policy.support_hours,
        "raise_urgency_after": policy.raise_urgency_after,
        "steps": [
            policy_services.StepInput(
                delay=step.delay,
                targets=[
                    policy_services.TargetInput(kind=t.kind, position=t.position, user=t.user)
                    for t in step.targets.all()
                ],
            )
            for step in policy.steps.order_by("order").prefetch_related("targets__user")
        ],
    }


class EscalationPolicyViewSet(TeamScopedViewSet):
    """Escalation policies with their steps and targets. Writes replace the step list; all audited."""

    # The docstring is the OpenAPI description. Writes go through the policy services, like the portal.

    queryset = EscalationPolicy.objects.select_related("team").prefetch_related("steps__targets")
    serializer_class = EscalationPolicySerializer
    filterset_fields = ["team"]
    ordering_fields = ["name", "id", "created_at"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        team = data.pop("team")
        self.require_write(team)
        data["steps"] = _steps_input(data.get("steps") or [])
        serializer.instance = policy_services.policy_create(team=team, actor=self.request.user, **data)

    def perform_update(self, serializer):
        team_move_refuse(serializer, "A policy")
        data = dict(serializer.validated_data)
        data.pop("team", None)
        if "steps" in data:
            data["steps"] = _steps_input(data["steps"])
        merged = {**_current(serializer.instance), **data}
        serializer.instance = policy_services.policy_update(
            policy=serializer.instance, actor=self.request.user, **merged
        )

    def perform_destroy(self, instance):
        policy_services.policy_delete(policy=instance, actor=self.request.user)
