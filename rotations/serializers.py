"""Roster API shapes: the serializers and list filters the viewsets in rotations.api use."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api_filters import IdFilter, UtcIsoDateTimeFilter
from rotations.handover import HANDOVER_NOTE_MAX
from rotations.models import (
    Exclusion,
    HandoverNote,
    Membership,
    Override,
    Rotation,
    RotationEra,
    RotationParticipant,
    SwapRequest,
    Team,
)

User = get_user_model()

MAX_SHIFT_WINDOW = timedelta(days=366)


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")
    initials = serializers.CharField()
    email = serializers.EmailField()


class MemberSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer()

    class Meta:
        model = Membership
        fields = ["user", "role"]


class TeamSerializer(serializers.ModelSerializer):
    members = MemberSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Team
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "time_zone",
            "handover_email",
            "escalation_policy",
            "slack_channel_id",
            "slack_usergroup_id",
            "members",
        ]
        extra_kwargs = {"slug": {"required": False}}


class HandoverNoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = HandoverNote
        fields = ["id", "team", "position", "text", "created_at"]
        read_only_fields = fields


class HandoverNoteWriteSerializer(serializers.Serializer):
    position = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    text = serializers.CharField(max_length=HANDOVER_NOTE_MAX, trim_whitespace=False)


class MembershipWriteSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class WindowSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, allow_null=True, required=False, default=None)
    start = serializers.CharField()
    end = serializers.CharField()


class ParticipantSerializer(serializers.ModelSerializer):
    user = UserBriefSerializer()

    class Meta:
        model = RotationParticipant
        fields = ["order", "user"]


class EraSerializer(serializers.ModelSerializer):
    participants = ParticipantSerializer(source="participant_links", many=True, read_only=True)
    restrictions = WindowSerializer(many=True, read_only=True)

    class Meta:
        model = RotationEra
        fields = [
            "id",
            "effective_from",
            "start_date",
            "handoff_time",
            "shift_unit",
            "shift_length",
            "restrictions",
            "participants",
        ]


class RotationSerializer(serializers.ModelSerializer):
    current_era = serializers.SerializerMethodField()
    eras = EraSerializer(many=True, read_only=True)

    class Meta:
        model = Rotation
        fields = ["id", "team", "name", "time_zone", "positions", "current_era", "eras"]
        read_only_fields = ["team", "time_zone"]

    @extend_schema_field(EraSerializer(allow_null=True))
    def get_current_era(self, rotation: Rotation):
        now = self.context.get("now") or timezone.now()
        eras = list(rotation.eras.all())  # prefetched, ordered by effective_from
        current = None
        for era in eras:
            if era.effective_from <= now:
                current = era
        current = current or (eras[0] if eras else None)
        return EraSerializer(current).data if current else None


class RotationCreateSerializer(serializers.Serializer):
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all())
    name = serializers.CharField(max_length=100)
    time_zone = serializers.CharField(max_length=64)
    positions = serializers.ListField(child=serializers.CharField(max_length=40), default=["primary", "secondary"])
    start_date = serializers.DateField()
    handoff_time = serializers.TimeField()
    shift_unit = serializers.ChoiceField(choices=RotationEra.Unit.choices, default=RotationEra.Unit.WEEKS)
    shift_length = serializers.IntegerField(min_value=1, default=1)
    participants = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), many=True)
    restrictions = WindowSerializer(many=True, required=False, default=list)


class RotationUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    positions = serializers.ListField(child=serializers.CharField(max_length=40), required=False)


class DefinitionChangeSerializer(serializers.Serializer):
    effective_from = serializers.DateTimeField()
    participants = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), many=True, required=False)
    shift_unit = serializers.ChoiceField(choices=RotationEra.Unit.choices, required=False)
    shift_length = serializers.IntegerField(min_value=1, required=False)
    handoff_time = serializers.TimeField(required=False)
    start_date = serializers.DateField(required=False)
    restrictions = WindowSerializer(many=True, required=False)


class ExclusionSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)

    class Meta:
        model = Exclusion
        fields = ["id", "user", "start", "end", "kind", "reason", "created_by", "created_at"]
        read_only_fields = ["created_by", "created_at"]


class OverrideSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)
    position = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)

    class Meta:
        model = Override
        fields = [
            "id",
            "rotation",
            "user",
            "start",
            "end",
            "position",
            "replaces_user",
            "reason",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["created_by", "created_at"]


class OncallEntrySerializer(serializers.Serializer):
    position = serializers.CharField()
    rotation = serializers.SerializerMethodField()
    user = UserBriefSerializer(allow_null=True)
    since = serializers.DateTimeField(source="start")
    until = serializers.DateTimeField()
    reason = serializers.ChoiceField(choices=["rotation", "cover", "override", "gap"])
    covering = UserBriefSerializer(allow_null=True, help_text="The scheduled person this holder stands in for")
    override_id = serializers.IntegerField(allow_null=True)
    exclusion_id = serializers.IntegerField(allow_null=True)

    @extend_schema_field({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}})
    def get_rotation(self, row) -> dict:
        return {"id": row.rotation_id, "name": row.rotation_name}


class TeamBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class OncallResponseSerializer(serializers.Serializer):
    team = TeamBriefSerializer()
    at = serializers.DateTimeField()
    positions = OncallEntrySerializer(many=True)


class OncallQuerySerializer(serializers.Serializer):
    team = serializers.CharField(help_text="Team id or slug")
    at = serializers.DateTimeField(required=False, help_text="ISO 8601 instant; default now")


class ShiftsQuerySerializer(serializers.Serializer):
    team = serializers.CharField(required=False, help_text="Team id or slug")
    user = serializers.IntegerField(required=False, help_text="User id")
    since = serializers.DateTimeField(required=False, help_text="Default now")
    until = serializers.DateTimeField(required=False, help_text="Default since + 7 days; at most 366 days later")

    def validate(self, attrs):
        if not attrs.get("team") and not attrs.get("user"):
            raise serializers.ValidationError({"team": ["Give team or user (or both)."]})
        since = attrs.get("since") or self.context["now"]
        until = attrs.get("until") or since + timedelta(days=7)
        if until <= since:
            raise serializers.ValidationError({"until": ["until must be after since."]})
        if until - since > MAX_SHIFT_WINDOW:
            raise serializers.ValidationError({"until": ["The window is at most 366 days."]})
        attrs["since"], attrs["until"] = since, until
        return attrs


class ShiftSerializer(serializers.Serializer):
    team = serializers.IntegerField()
    rotation = serializers.DictField()
    era = serializers.IntegerField()
    shift_index = serializers.IntegerField()
    position = serializers.CharField()
    user = UserBriefSerializer(allow_null=True)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    reason = serializers.ChoiceField(choices=["rotation", "cover", "override", "gap"])
    covering = UserBriefSerializer(allow_null=True)
    override_id = serializers.IntegerField(allow_null=True)
    exclusion_id = serializers.IntegerField(allow_null=True)


class IcalLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="The calendar feed URL (secret: anyone with it can read the shifts)")


class RotationFilter(django_filters.FilterSet):
    team = IdFilter(field_name="team_id")

    class Meta:
        model = Rotation
        fields = ["team"]


class ExclusionFilter(django_filters.FilterSet):
    team = IdFilter(field_name="user__memberships__team_id", label="Members of this team")
    ends_after = UtcIsoDateTimeFilter(field_name="end", lookup_expr="gt")
    starts_before = UtcIsoDateTimeFilter(field_name="start", lookup_expr="lt")

    class Meta:
        model = Exclusion
        fields = ["user", "kind", "team", "ends_after", "starts_before"]


class OverrideFilter(django_filters.FilterSet):
    team = IdFilter(field_name="rotation__team_id")
    ends_after = UtcIsoDateTimeFilter(field_name="end", lookup_expr="gt")
    starts_before = UtcIsoDateTimeFilter(field_name="start", lookup_expr="lt")

    class Meta:
        model = Override
        fields = ["rotation", "user", "replaces_user", "position", "team", "ends_after", "starts_before"]


class SwapRequestSerializer(serializers.ModelSerializer):
    taker = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())

    class Meta:
        model = SwapRequest
        fields = [
            "id",
            "rotation",
            "requester",
            "taker",
            "start",
            "end",
            "reason",
            "status",
            "created_at",
            "decided_at",
            "override",
        ]
        read_only_fields = ["requester", "status", "created_at", "decided_at", "override"]


class SwapRequestFilter(django_filters.FilterSet):
    class Meta:
        model = SwapRequest
        fields = ["status", "rotation"]
