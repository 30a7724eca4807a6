"""REST API (/api/v1/): incidents and their actions, escalation policies, integrations, maintenance
windows, heartbeats, users. Views parse, check portal.permissions, call a service, render.

Scoping: every list shows only the caller's teams (all for staff); an object of another team is a 404.
Role checks (portal.permissions): viewers read; engineers and managers work incidents of their teams;
managers (and staff) change their teams' policies, integrations, maintenance windows and heartbeats.
"""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api_filters import UtcIsoDateTimeFilter
from escalations import services
from escalations.models import (
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Heartbeat,
    Incident,
    Integration,
    MaintenanceWindow,
    Page,
    TimelineEvent,
)
from escalations.models.intake import integration_key_new
from portal.models import User
from portal.permissions import can_manage_team, can_work_incidents, user_team_ids
from rotations.models import AuditEntry, Membership, Team

VIA = TimelineEvent.Via.API


# --- scoping and permissions ---------------------------------------------------------------------


def _visible_team_filter(user, path: str) -> Q:
    if user.is_staff:
        return Q()
    return Q(**{f"{path}__in": user_team_ids(user=user)})


class TeamScopedViewSet(viewsets.ModelViewSet):
    """A model owned by a team (via `team_path`). Reads need a role on the team (or staff); writes need
    `write_check(user, team)` on the object's team, and on the team named in the request body."""

    team_path = "team"
    write_check = staticmethod(can_manage_team)

    def get_queryset(self):
        return super().get_queryset().filter(_visible_team_filter(self.request.user, self.team_path))

    def team_of(self, obj) -> Team:
        for part in self.team_path.split("__"):
            obj = getattr(obj, part)
        return obj

    def check_object_permissions(self, request, obj) -> None:
        super().check_object_permissions(request, obj)
        if request.method not in permissions.SAFE_METHODS and not self.write_check(request.user, self.team_of(obj)):
            raise exceptions.PermissionDenied("Your role on this team does not allow this change.")

    def require_write(self, team: Team) -> None:
        if not self.write_check(self.request.user, team):
            raise exceptions.PermissionDenied("Your role on this team does not allow this change.")


@extend_schema_field(OpenApiTypes.INT)
class TeamField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Team.objects.all()


def _audit(*, actor, team, action: str, obj, changes: dict | None = None) -> None:
    AuditEntry.objects.create(
        actor=actor,
        team=team,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes=changes or {},
    )


def _json_safe(data):
    if isinstance(data, dict):
        return {k: _json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_json_safe(v) for v in data]
    if hasattr(data, "pk"):
        return data.pk
    if isinstance(data, timedelta):
        return data.total_seconds()
    if hasattr(data, "isoformat"):
        return data.isoformat()
    return data


# --- users ---------------------------------------------------------------------------------------


class UserSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = User
        fields = ["id", "name", "email", "time_zone"]


class UserViewSet(viewsets.ReadOnlyModelViewSet):
    """People who share a team with you (everyone for staff). Limited fields."""

    serializer_class = UserSerializer
    queryset = User.objects.filter(is_active=True).order_by("id")
    filterset_fields = ["email"]
    ordering_fields = ["id", "email", "full_name"]

    def get_queryset(self):
        user = self.request.user
        if user.is_staff:
            return super().get_queryset()
        teams = user_team_ids(user=user)
        return super().get_queryset().filter(memberships__team_id__in=teams).distinct()


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
    team = django_filters.NumberFilter(field_name="team_id")
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


_action_schema = dict(request=None, responses={200: ActionResultSerializer})


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
        users = list(User.objects.filter(pk__in=ids, is_active=True, memberships__team=incident.team).distinct())
        missing = ids - {u.pk for u in users}
        if missing:
            raise serializers.ValidationError({"user_ids": f"Not members of {incident.team}: {sorted(missing)}"})
        services.incident_reassign(incident=incident, by=request.user, to_users=users, via=VIA)
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
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []  # (team, name) uniqueness is checked in validate() with a clear message

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


class AuditedTeamViewSet(TeamScopedViewSet):
    def perform_create(self, serializer):
        self.require_write(serializer.validated_data["team"])
        with transaction.atomic():
            obj = serializer.save(**self.extra_create_fields())
            _audit(
                actor=self.request.user,
                team=self.team_of(obj),
                action=AuditEntry.Action.CREATE,
                obj=obj,
                changes=_json_safe(serializer.validated_data),
            )

    def extra_create_fields(self) -> dict:
        return {}

    def perform_update(self, serializer):
        new_team = serializer.validated_data.get("team")
        if new_team is not None:
            self.require_write(new_team)
        with transaction.atomic():
            obj = serializer.save()
            _audit(
                actor=self.request.user,
                team=self.team_of(obj),
                action=AuditEntry.Action.UPDATE,
                obj=obj,
                changes=_json_safe(serializer.validated_data),
            )

    def perform_destroy(self, instance):
        with transaction.atomic():
            _audit(actor=self.request.user, team=self.team_of(instance), action=AuditEntry.Action.DELETE, obj=instance)
            instance.delete()


class EscalationPolicyViewSet(AuditedTeamViewSet):
    """Escalation policies with their steps and targets. Writes replace the step list; all audited."""

    queryset = EscalationPolicy.objects.select_related("team").prefetch_related("steps__targets")
    serializer_class = EscalationPolicySerializer
    filterset_fields = ["team"]
    ordering_fields = ["name", "id", "created_at"]


# --- integrations --------------------------------------------------------------------------------


class IntegrationSerializer(serializers.ModelSerializer):
    team = TeamField()
    endpoint = serializers.SerializerMethodField()

    class Meta:
        model = Integration
        fields = ["id", "team", "name", "kind", "enabled", "policy", "endpoint", "created_at"]
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
