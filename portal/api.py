"""Personal API tokens: create (the raw token is returned once, only from a signed-in session), list, revoke."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response

from portal import services
from portal.api_auth import ApiTokenAuthentication
from portal.models import ApiToken


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {
            "expires_at": {
                "required": True,
                "allow_null": False,
                "help_text": "In the future, at most one year from now",
            }
        }


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; only its hash is stored")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


@extend_schema_view(
    create=extend_schema(
        summary="Create a token (returned once; signed-in sessions only, not with a token)",
        responses={201: ApiTokenCreatedSerializer},
    ),
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
        if isinstance(request.successful_authenticator, ApiTokenAuthentication):
            raise exceptions.PermissionDenied(
                "API tokens are created only from a signed-in session (your profile page), not with a token."
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, raw = services.api_token_create(
            user=request.user,
            name=serializer.validated_data["name"],
            expires_at=serializer.validated_data["expires_at"],
        )
        data = ApiTokenSerializer(token).data
        data["token"] = raw
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_token_revoke(token=instance)
