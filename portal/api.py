"""Personal API tokens: create (the raw token is returned once), list, revoke."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from portal.api_auth import token_generate, token_hash
from portal.models import ApiToken

MAX_LIFETIME = timedelta(days=365)


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"expires_at": {"required": True, "allow_null": False}}

    def validate_expires_at(self, value):
        now = timezone.now()
        if value <= now:
            raise serializers.ValidationError("The expiry must be in the future.")
        if value > now + MAX_LIFETIME:
            raise serializers.ValidationError("A token lives at most one year.")
        return value


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; only its hash is stored")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


@extend_schema_view(
    create=extend_schema(summary="Create a token (returned once)", responses={201: ApiTokenCreatedSerializer}),
    destroy=extend_schema(summary="Revoke a token", responses={204: None}),
)
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own personal API tokens."""

    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.all()
    ordering_fields = ["created_at", "expires_at", "name"]
    filterset_fields: list[str] = []

    def get_queryset(self):
        return super().get_queryset().filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        raw = token_generate()
        token = ApiToken.objects.create(
            user=request.user,
            name=serializer.validated_data["name"],
            expires_at=serializer.validated_data["expires_at"],
            prefix=raw[:12],
            key_hash=token_hash(raw),
        )
        data = ApiTokenSerializer(token).data
        data["token"] = raw
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        if instance.revoked_at is None:
            instance.revoked_at = timezone.now()
            instance.save(update_fields=["revoked_at"])
