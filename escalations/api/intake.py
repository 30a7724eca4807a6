"""Integrations, maintenance windows and heartbeats over the API."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api_filters import UtcIsoDateTimeFilter
from escalations.api.common import TeamField, TeamScopedViewSet, team_move_refuse
from escalations.intake import services
from escalations.models import (
    Heartbeat,
    Integration,
    MaintenanceWindow,
)

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
        if obj.kind == Integration.Kind.OPSGENIE:
            # The API base: senders append v2/alerts… and send the key as `Authorization: GenieKey <key>`.
            return reverse("intake:opsgenie-alerts").removesuffix("v2/alerts")
        return reverse("intake:heartbeat", args=["<token>"])


class IntegrationWithKeySerializer(IntegrationSerializer):
    key = serializers.CharField(read_only=True, help_text="The secret routing key; shown on create and rotate only")

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "key"]


@extend_schema_view(create=extend_schema(responses={201: IntegrationWithKeySerializer}))
class IntegrationViewSet(TeamScopedViewSet):
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

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        self.require_write(data["team"])
        serializer.instance = services.integration_create(actor=self.request.user, **data)

    def perform_update(self, serializer):
        team_move_refuse(serializer, "An integration")
        current = serializer.instance
        data = serializer.validated_data
        serializer.instance = services.integration_update(
            integration=current,
            actor=self.request.user,
            name=data.get("name", current.name),
            kind=data.get("kind", current.kind),
            enabled=data.get("enabled", current.enabled),
            policy=data.get("policy", current.policy),
            urgency_rule=data.get("urgency_rule", current.urgency_rule),
        )

    def perform_destroy(self, instance):
        services.integration_delete(integration=instance, actor=self.request.user)

    @extend_schema(
        summary="Replace the key; the old one stops working at once",
        request=None,
        responses={200: IntegrationWithKeySerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, pk=None):
        integration = self.get_object()
        self.require_write(integration.team)
        integration = services.integration_key_rotate(integration=integration, actor=request.user)
        return Response(IntegrationWithKeySerializer(integration).data)


# --- maintenance windows -------------------------------------------------------------------------


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    team = TeamField()

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "team", "integration", "start", "end", "reason", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]


class MaintenanceFilter(django_filters.FilterSet):
    active_at = UtcIsoDateTimeFilter(method="filter_active_at", label="Covers this moment")

    class Meta:
        model = MaintenanceWindow
        fields = ["team", "integration", "active_at"]

    def filter_active_at(self, queryset, name, value):
        return queryset.filter(start__lte=value, end__gt=value) if value else queryset


class MaintenanceWindowViewSet(TeamScopedViewSet):
    """Maintenance windows: alerts are recorded as suppressed incidents that page nobody."""

    queryset = MaintenanceWindow.objects.select_related("team", "integration")
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceFilter
    ordering_fields = ["start", "end", "id"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        self.require_write(data["team"])
        serializer.instance = services.maintenance_window_create(actor=self.request.user, **data)

    def perform_update(self, serializer):
        team_move_refuse(serializer, "A window")
        current = serializer.instance
        data = serializer.validated_data
        serializer.instance = services.maintenance_window_update(
            window=current,
            actor=self.request.user,
            start=data.get("start", current.start),
            end=data.get("end", current.end),
            integration=data.get("integration", current.integration),
            reason=data.get("reason", current.reason),
        )

    def perform_destroy(self, instance):
        services.maintenance_window_delete(window=instance, actor=self.request.user)


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


class HeartbeatWithTokenSerializer(HeartbeatSerializer):
    ping_url = serializers.SerializerMethodField()

    class Meta(HeartbeatSerializer.Meta):
        fields = [*HeartbeatSerializer.Meta.fields, "token", "ping_url"]
        read_only_fields = [*HeartbeatSerializer.Meta.read_only_fields, "token"]

    def get_ping_url(self, obj: Heartbeat) -> str:
        return reverse("intake:heartbeat", args=[obj.token])


@extend_schema_view(create=extend_schema(responses={201: HeartbeatWithTokenSerializer}))
class HeartbeatViewSet(TeamScopedViewSet):
    """Heartbeats: a job pings its URL; silence past interval + grace opens an incident."""

    queryset = Heartbeat.objects.select_related("team")
    serializer_class = HeartbeatSerializer
    filterset_fields = ["team", "state", "enabled"]
    ordering_fields = ["name", "id", "last_ping_at"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return Response(HeartbeatWithTokenSerializer(serializer.instance).data, status=status.HTTP_201_CREATED)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        self.require_write(data["team"])
        serializer.instance = services.heartbeat_create(actor=self.request.user, **data)

    def perform_update(self, serializer):
        team_move_refuse(serializer, "A heartbeat")
        current = serializer.instance
        data = serializer.validated_data
        serializer.instance = services.heartbeat_update(
            heartbeat=current,
            actor=self.request.user,
            name=data.get("name", current.name),
            interval=data.get("interval", current.interval),
            grace=data.get("grace", current.grace),
            enabled=data.get("enabled", current.enabled),
            integration=data.get("integration", current.integration),
        )

    def perform_destroy(self, instance):
        services.heartbeat_delete(heartbeat=instance, actor=self.request.user)

    @extend_schema(summary="Replace the ping token", request=None, responses={200: HeartbeatWithTokenSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request, pk=None):
        heartbeat = self.get_object()
        self.require_write(heartbeat.team)
        heartbeat = services.heartbeat_token_rotate(heartbeat=heartbeat, actor=request.user)
        return Response(HeartbeatWithTokenSerializer(heartbeat).data)
