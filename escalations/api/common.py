"""What the escalations API views share: team scoping and the team field. Writes go through the
rooms' services, which validate and audit."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, permissions, serializers, viewsets

from escalations.models import (
    TimelineEvent,
)
from portal.permissions import can_manage_team, user_team_ids
from rotations.models import Team

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


def team_move_refuse(serializer: serializers.Serializer, noun: str) -> None:
    """The services keep an object in its team; a body naming another team is refused, not ignored."""
    new_team = serializer.validated_data.get("team")
    instance = serializer.instance
    if new_team is not None and instance is not None and new_team.pk != instance.team_id:
        raise serializers.ValidationError({"team": f"{noun} cannot move to another team."})
