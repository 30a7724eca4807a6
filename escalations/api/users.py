"""Users visible to the caller (read-only)."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from portal.models import User
from portal.permissions import user_team_ids

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
