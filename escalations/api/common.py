"""What the escalations API views share: team scoping, the team field, the audit of writes."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, permissions, serializers, viewsets

from escalations.models import (
    TimelineEvent,
)
from portal.permissions import can_manage_team, user_team_ids
from rotations.models import AuditEntry, Team

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
