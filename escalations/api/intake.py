"""Integrations, maintenance windows and heartbeats over the API."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api_filters import UtcIsoDateTimeFilter
from escalations.api.common import AuditedTeamViewSet, TeamField, _audit
from escalations.models import (
    Heartbeat,
    Integration,
    MaintenanceWindow,
)
from escalations.models.intake import integration_key_new
from rotations.models import AuditEntry

# --- integrations --------------------------------------------------------------------------------


class IntegrationSerializer(serializers.ModelSerializer):
    team = TeamField()
    endpoint = serializers.SerializerMethodField()

    class Meta:
        model = Integration
        fields = ["id", "team", "name", "kind", "enabled", "urgency_rule", "policy", "endpoint", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list = []

    def get_endpoint(self, obj: Integration) -> str:
        """Where the sender posts (relative to this server); the key is part of it except for PagerDuty."""
        if obj.kind == Integration.Kind.PAGERDUTY:
            return reverse("intake:pagerduty-enqueue")
        if obj.kind == Integration.Kind.ALERTMANAGER:
            return reverse("intake:alertmanager", args=["<key>"])
        if obj.kind == Integration.Kind.GENERIC:
            return reverse("intake:generic", args=["<key>"])
        return reverse("intake:heartbeat", args=["<token>"])

    def validate(self, attrs):
        team = attrs.get("team") or getattr(self.instance, "team", None)
        if self.instance is not None and "team" in attrs and attrs["team"] != self.instance.team:
            raise serializers.ValidationError({"team": "An integration cannot move to another team."})
        if self.instance is not None and "kind" in attrs and attrs["kind"] != self.instance.kind:
            raise serializers.ValidationError({"kind": "The kind of an integration cannot change."})
        policy = attrs.get("policy")
        if policy is not None and policy.team_id != team.pk:
            raise serializers.ValidationError({"policy": "The policy belongs to another team."})
        name = attrs.get("name") or getattr(self.instance, "name", None)
        clash = Integration.objects.filter(team=team, name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"name": "This team already has an integration with this name."})
        return attrs


class IntegrationWithKeySerializer(IntegrationSerializer):
    key = serializers.CharField(read_only=True, help_text="The secret routing key; shown on create and rotate only")

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "key"]


@extend_schema_view(create=extend_schema(responses={201: IntegrationWithKeySerializer}))
class IntegrationViewSet(AuditedTeamViewSet):
    """Where monitoring sends events. The key is a secret: returned on create and by rotate-key only."""

    queryset = Integration.objects.select_related("team", "policy")
    serializer_class = IntegrationSerializer
    filterset_fields = ["team", "kind", "enabled"]
    ordering_fields = ["name", "id", "created_at"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return Response(IntegrationWithKeySerializer(serializer.instance).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace the key; the old one stops working at once",
        request=None,
        responses={200: IntegrationWithKeySerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, pk=None):
        integration = self.get_object()
        self.require_write(integration.team)
        with transaction.atomic():
            integration.key = integration_key_new()
            integration.save(update_fields=["key"])
            _audit(
                actor=request.user,
                team=integration.team,
                action=AuditEntry.Action.UPDATE,
                obj=integration,
                changes={"key": "rotated"},
            )
        return Response(IntegrationWithKeySerializer(integration).data)


# --- maintenance windows -------------------------------------------------------------------------


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    team = TeamField()

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "team", "integration", "start", "end", "reason", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]

    def validate(self, attrs):
        team = attrs.get("team") or getattr(self.instance, "team", None)
        start = attrs.get("start") or getattr(self.instance, "start", None)
        end = attrs.get("end") or getattr(self.instance, "end", None)
        if start and end and end <= start:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        integration = attrs.get("integration")
        if integration is not None and integration.team_id != team.pk:
            raise serializers.ValidationError({"integration": "The integration belongs to another team."})
        if self.instance is not None and "team" in attrs and attrs["team"] != self.instance.team:
            raise serializers.ValidationError({"team": "A window cannot move to another team."})
        return attrs


class MaintenanceFilter(django_filters.FilterSet):
    active_at = UtcIsoDateTimeFilter(method="filter_active_at", label="Covers this moment")

    class Meta:
        model = MaintenanceWindow
        fields = ["team", "integration", "active_at"]

    def filter_active_at(self, queryset, name, value):
        return queryset.filter(start__lte=value, end__gt=value) if value else queryset


class MaintenanceWindowViewSet(AuditedTeamViewSet):
    """Maintenance windows: alerts are recorded as suppressed incidents that page nobody."""

    queryset = MaintenanceWindow.objects.select_related("team", "integration")
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceFilter
    ordering_fields = ["start", "end", "id"]

    def extra_create_fields(self) -> dict:
        return {"created_by": self.request.user}


# --- heartbeats ----------------------------------------------------------------------------------


class HeartbeatSerializer(serializers.ModelSerializer):
    team = TeamField()
    interval = serializers.DurationField(min_value=timedelta(seconds=30), max_value=timedelta(days=31))
    grace = serializers.DurationField(min_value=timedelta(0), max_value=timedelta(days=7), required=False)

    class Meta:
        model = Heartbeat
        fields = [
            "id",
            "team",
            "name",
            "integration",
            "interval",
            "grace",
            "enabled",
            "last_ping_at",
            "state",
            "open_incident",
            "created_at",
        ]
        read_only_fields = ["id", "last_ping_at", "state", "open_incident", "created_at"]
        validators: list = []

    def validate(self, attrs):
        team = attrs.get("team") or getattr(self.instance, "team", None)
        if self.instance is not None and "team" in attrs and attrs["team"] != self.instance.team:
            raise serializers.ValidationError({"team": "A heartbeat cannot move to another team."})
        integration = attrs.get("integration")
        if integration is not None and integration.team_id != team.pk:
            raise serializers.ValidationError({"integration": "The integration belongs to another team."})
        name = attrs.get("name") or getattr(self.instance, "name", None)
        clash = Heartbeat.objects.filter(team=team, name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"name": "This team already has a heartbeat with this name."})
        return attrs


class HeartbeatWithTokenSerializer(HeartbeatSerializer):
    ping_url = serializers.SerializerMethodField()

    class Meta(HeartbeatSerializer.Meta):
        fields = [*HeartbeatSerializer.Meta.fields, "token", "ping_url"]
        read_only_fields = [*HeartbeatSerializer.Meta.read_only_fields, "token"]

    def get_ping_url(self, obj: Heartbeat) -> str:
        return reverse("intake:heartbeat", args=[obj.token])


@extend_schema_view(create=extend_schema(responses={201: HeartbeatWithTokenSerializer}))
class HeartbeatViewSet(AuditedTeamViewSet):
    """Heartbeats: a job pings its URL; silence past interval + grace opens an incident."""

    queryset = Heartbeat.objects.select_related("team")
    serializer_class = HeartbeatSerializer
    filterset_fields = ["team", "state", "enabled"]
    ordering_fields = ["name", "id", "last_ping_at"]

    def extra_create_fields(self) -> dict:
        return {"created_at": timezone.now()}

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return Response(HeartbeatWithTokenSerializer(serializer.instance).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Replace the ping token", request=None, responses={200: HeartbeatWithTokenSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request, pk=None):
        heartbeat = self.get_object()
        self.require_write(heartbeat.team)
        with transaction.atomic():
            heartbeat.token = integration_key_new()
            heartbeat.save(update_fields=["token"])
            _audit(
                actor=request.user,
                team=heartbeat.team,
                action=AuditEntry.Action.UPDATE,
                obj=heartbeat,
                changes={"token": "rotated"},
            )
        return Response(HeartbeatWithTokenSerializer(heartbeat).data)
