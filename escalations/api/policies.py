"""Escalation policies over the API."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import serializers

from escalations.api.common import AuditedTeamViewSet, TeamField
from escalations.models import (
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
)
from escalations.policies import services as policy_services
from rotations.models import Membership

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
        validators: list = []  # (team, name) uniqueness is checked in validate() with a clear message
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

    def validate(self, attrs):
        team = attrs.get("team") or getattr(self.instance, "team", None)
        name = attrs.get("name") or getattr(self.instance, "name", None)
        clash = EscalationPolicy.objects.filter(team=team, name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
            if "team" in attrs and attrs["team"] != self.instance.team:
                raise serializers.ValidationError({"team": "A policy cannot move to another team."})
        if clash.exists():
            raise serializers.ValidationError({"name": "This team already has a policy with this name."})
        for step in attrs.get("steps") or []:
            for target in step["targets"]:
                user = target.get("user")
                if user is not None and not Membership.objects.filter(team=team, user=user).exists():
                    raise serializers.ValidationError({"steps": f"{user} is not a member of {team}."})
        return attrs

    def _write_steps(self, policy: EscalationPolicy, steps: list[dict]) -> None:
        policy.steps.all().delete()
        for order, step in enumerate(steps):
            row = EscalationStep.objects.create(policy=policy, order=order, delay=step["delay"])
            for target in step["targets"]:
                EscalationTarget.objects.create(step=row, **target)

    @transaction.atomic
    def create(self, validated_data):
        steps = validated_data.pop("steps", [])
        policy = EscalationPolicy.objects.create(**validated_data)
        self._write_steps(policy, steps)
        return policy

    @transaction.atomic
    def update(self, instance, validated_data):
        steps = validated_data.pop("steps", None)
        for key, value in validated_data.items():
            setattr(instance, key, value)
        instance.save()
        if steps is not None:
            self._write_steps(instance, steps)
        return instance


class EscalationPolicyViewSet(AuditedTeamViewSet):
    """Escalation policies with their steps and targets. Writes replace the step list; all audited."""

    queryset = EscalationPolicy.objects.select_related("team").prefetch_related("steps__targets")
    serializer_class = EscalationPolicySerializer
    filterset_fields = ["team"]
    ordering_fields = ["name", "id", "created_at"]
