"""REST API (/api/v1/): incidents and their actions, escalation policies, integrations, maintenance
windows, heartbeats, users. Views parse, check portal.permissions, call a service, render.

Scoping: every list shows only the caller's teams (all for staff); an object of another team is a 404.
Role checks (portal.permissions): viewers read; engineers and managers work incidents of their teams;
managers (and staff) change their teams' policies, integrations, maintenance windows and heartbeats.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api_filters import IdFilter, UtcIsoDateTimeFilter
from escalations.api.common import VIA, TeamField, _visible_team_filter
from escalations.api.users import UserSerializer
from escalations.incidents import services
from escalations.models import (
    EscalationPolicy,
    Incident,
    Page,
    TimelineEvent,
)
from portal.models import User
from portal.permissions import can_work_incidents

# --- incidents -----------------------------------------------------------------------------------


class TimelineEventSerializer(serializers.ModelSerializer):
    actor = UserSerializer(read_only=True)

    class Meta:
        model = TimelineEvent
        fields = ["id", "at", "kind", "actor", "via", "message", "data"]


class PageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Page
        fields = ["id", "user", "channel", "destination", "status", "step", "loop", "due_at", "sent_at", "status_at"]


class IncidentSerializer(serializers.ModelSerializer):
    team = TeamField()
    assignees = UserSerializer(many=True, read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "team",
            "policy",
            "title",
            "details",
            "severity",
            "urgency",
            "source",
            "dedup_key",
            "status",
            "suppressed",
            "alert_count",
            "links",
            "created_at",
            "updated_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "assignees",
            "snoozed_until",
        ]
        read_only_fields = [
            "policy",
            "source",
            "status",
            "suppressed",
            "alert_count",
            "created_at",
            "updated_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "snoozed_until",
        ]


class IncidentDetailSerializer(IncidentSerializer):
    timeline = TimelineEventSerializer(many=True, read_only=True)
    pages = PageSerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "payload", "timeline", "pages"]
        read_only_fields = [*IncidentSerializer.Meta.read_only_fields, "payload"]


class IncidentCreateSerializer(serializers.Serializer):
    team = TeamField()
    title = serializers.CharField(max_length=1024)
    details = serializers.CharField(required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=Incident.Severity.choices, default=Incident.Severity.ERROR)
    urgency = serializers.ChoiceField(choices=Incident.Urgency.choices, default=Incident.Urgency.HIGH)
    dedup_key = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    policy = serializers.PrimaryKeyRelatedField(
        queryset=EscalationPolicy.objects.all(), required=False, allow_null=True, default=None
    )

    def validate(self, attrs):
        if attrs["policy"] is not None and attrs["policy"].team_id != attrs["team"].pk:
            raise serializers.ValidationError({"policy": "The policy belongs to another team."})
        return attrs


class ReassignSerializer(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False, max_length=50)


class PolicyChangeSerializer(serializers.Serializer):
    policy = serializers.IntegerField(min_value=1, help_text="An escalation policy of the incident's team.")


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10000)


class SnoozeSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60)


class ActionResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    incident = IncidentSerializer()


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Incident.Status.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Incident.Severity.choices)
    source = django_filters.MultipleChoiceFilter(choices=Incident.Source.choices)
    team = IdFilter(field_name="team_id")
    assigned_to_me = django_filters.BooleanFilter(method="filter_assigned_to_me", label="Assigned to me")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = ["status", "severity", "source", "team", "assigned_to_me", "created_after", "created_before"]

    def filter_assigned_to_me(self, queryset, name, value):
        if value is None:
            return queryset
        mine = Q(assignees=self.request.user)
        return (queryset.filter(mine) if value else queryset.exclude(mine)).distinct()


_action_schema: dict[str, Any] = dict(request=None, responses={200: ActionResultSerializer})


@extend_schema_view(
    list=extend_schema(summary="Incidents of your teams"),
    retrieve=extend_schema(summary="An incident with its timeline and pages", responses=IncidentDetailSerializer),
    create=extend_schema(
        summary="Open a manual incident", request=IncidentCreateSerializer, responses={201: IncidentDetailSerializer}
    ),
)
class IncidentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    queryset = Incident.objects.select_related("team").prefetch_related("assignees")
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    ordering_fields = ["created_at", "updated_at", "severity", "status", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        qs = super().get_queryset().filter(_visible_team_filter(self.request.user, "team"))
        if self.action == "retrieve":
            qs = qs.prefetch_related("timeline__actor", "pages")
        return qs

    def get_serializer_class(self):
        if self.action == "retrieve":
            return IncidentDetailSerializer
        if self.action == "create":
            return IncidentCreateSerializer
        return IncidentSerializer

    def create(self, request, *args, **kwargs):
        serializer = IncidentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not can_work_incidents(request.user, data["team"]):
            raise exceptions.PermissionDenied("You cannot open incidents for this team.")
        result = services.incident_trigger(
            team=data["team"],
            title=data["title"],
            details=data["details"],
            severity=data["severity"],
            urgency=data["urgency"],
            dedup_key=data["dedup_key"],
            policy=data["policy"],
            source=Incident.Source.API,
            actor=request.user,
            via=VIA,
        )
        incident = self.get_queryset().get(pk=result.incident.pk)
        return Response(
            IncidentDetailSerializer(incident).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    def _worked(self) -> Incident:
        incident = self.get_object()
        if not can_work_incidents(self.request.user, incident.team):
            raise exceptions.PermissionDenied("Your role on this team cannot work incidents.")
        return incident

    def _done(self, incident: Incident, changed: bool) -> Response:
        incident = self.get_queryset().get(pk=incident.pk)
        return Response({"changed": changed, "incident": IncidentSerializer(incident).data})

    @extend_schema(summary="Acknowledge", **_action_schema)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        incident = self._worked()
        return self._done(incident, services.incident_acknowledge(incident=incident, by=request.user, via=VIA))

    @extend_schema(summary="Resolve", **_action_schema)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        incident = self._worked()
        return self._done(incident, services.incident_resolve(incident=incident, by=request.user, via=VIA))

    @extend_schema(summary="Escalate to the next step now", **_action_schema)
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        incident = self._worked()
        return self._done(incident, services.incident_escalate(incident=incident, by=request.user, via=VIA))

    @extend_schema(
        summary="Reassign to these team members", request=ReassignSerializer, responses={200: ActionResultSerializer}
    )
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        incident = self._worked()
        serializer = ReassignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = set(serializer.validated_data["user_ids"])
        users = list(User.objects.filter(pk__in=ids))
        missing = ids - {u.pk for u in users}
        if missing:
            raise serializers.ValidationError(
                {"user_ids": f"Not engineers or managers of {incident.team}: {sorted(missing)}"}
            )
        # The service refuses anyone who is not an active engineer or manager of the team (a 400).
        services.incident_reassign(incident=incident, by=request.user, to_users=users, via=VIA)
        return self._done(incident, True)

    @extend_schema(
        summary="Move to another escalation policy of the team (restarts at its step 1 now)",
        request=PolicyChangeSerializer,
        responses={200: ActionResultSerializer},
    )
    @action(detail=True, methods=["post"])
    def policy(self, request, pk=None):
        incident = self._worked()
        serializer = PolicyChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy_id = serializer.validated_data["policy"]
        policy = EscalationPolicy.objects.filter(pk=policy_id, team_id=incident.team_id).first()
        if policy is None:
            raise serializers.ValidationError({"policy": f"{incident.team} has no escalation policy {policy_id}."})
        try:
            services.incident_policy_change(incident=incident, policy=policy, by=request.user, via=VIA)
        except ValueError as exc:
            raise serializers.ValidationError({"policy": str(exc)}) from None
        return self._done(incident, True)

    @extend_schema(summary="Add a note", request=NoteSerializer, responses={200: ActionResultSerializer})
    @action(detail=True, methods=["post"])
    def note(self, request, pk=None):
        incident = self._worked()
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.incident_note_add(
                incident=incident, by=request.user, text=serializer.validated_data["text"], via=VIA
            )
        except ValueError as exc:
            raise serializers.ValidationError({"text": str(exc)}) from None
        return self._done(incident, True)

    @extend_schema(summary="Snooze for some minutes", request=SnoozeSerializer, responses={200: ActionResultSerializer})
    @action(detail=True, methods=["post"])
    def snooze(self, request, pk=None):
        incident = self._worked()
        serializer = SnoozeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        now = timezone.now()
        until = now + timedelta(minutes=serializer.validated_data["minutes"])
        try:
            services.incident_snooze(incident=incident, by=request.user, until=until, via=VIA, now=now)
        except ValueError as exc:
            raise serializers.ValidationError({"minutes": str(exc)}) from None
        return self._done(incident, True)
