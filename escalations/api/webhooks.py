"""Outgoing webhook subscriptions over the API: team managers and staff only (URLs and delivery logs are
the team's configuration; the secret is shown on create and rotate-secret only). Writes go through
escalations.webhooks.services, like the portal's."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiCallback,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from escalations.api.common import TeamField, TeamScopedViewSet, team_move_refuse
from escalations.models import Incident, WebhookDelivery, WebhookSubscription
from escalations.webhooks import selectors, services
from escalations.webhooks.events import EVENT_TYPE_CHOICES
from portal.permissions import can_manage_team
from rotations.models import Membership

SIGNATURE_HELP = (
    "Every delivery is a POST with a JSON body (the event) and three headers, after Standard Webhooks: "
    '`webhook-id` (the event id; the same on retries and on "send again" — deduplicate by it), '
    "`webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`: `v1,` + base64 of "
    "HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the base64-decoded part "
    "of the secret after `whsec_`. After a secret rotation the old secret also signs for 24 h (signatures "
    "separated by spaces). Answer 2xx within 15 s; anything else (redirects included) is retried with "
    "backoff for 24 h. See docs/webhooks.md."
)


# --- the event body (documentation of what receivers get) ------------------------------------------


class _TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class WebhookIncidentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField(help_text='"incident"')
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Incident.Status.choices)
    urgency = serializers.ChoiceField(choices=Incident.Urgency.choices)
    severity = serializers.ChoiceField(choices=Incident.Severity.choices)
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source
    dedup_key = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    team = _TeamRefSerializer()
    html_url = serializers.URLField()


class _AgentSerializer(serializers.Serializer):
    type = serializers.CharField(help_text='"user"')
    id = serializers.IntegerField()
    name = serializers.CharField()


class _EventDataSerializer(serializers.Serializer):
    incident = WebhookIncidentSerializer(help_text="The incident as it was when the event happened")
    agent = _AgentSerializer(allow_null=True, help_text="Who did it; null for Backstop itself or an integration")
    via = serializers.CharField(help_text="web, api, sms, voice, email, integration or system")
    message = serializers.CharField(help_text="The timeline line, as the portal shows it")
    note = inline_serializer(
        "WebhookNote", {"id": serializers.IntegerField(), "content": serializers.CharField()}, required=False
    )
    escalation = inline_serializer(
        "WebhookEscalation",
        {
            "cycle": serializers.IntegerField(),
            "step": serializers.IntegerField(help_text="1-based step of the policy now paging"),
            "loop": serializers.IntegerField(help_text="0 on the first pass through the policy"),
            "user_ids": serializers.ListField(child=serializers.IntegerField()),
        },
        required=False,
    )
    assignee_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    page = inline_serializer(
        "WebhookPage",
        {
            "id": serializers.IntegerField(allow_null=True),
            "channel": serializers.CharField(allow_null=True),
            "user_id": serializers.IntegerField(allow_null=True),
        },
        required=False,
    )


class WebhookEventBodySerializer(serializers.Serializer):
    """The JSON body of every delivery."""

    id = serializers.CharField(help_text="The event id (`evt_…`), also sent as `webhook-id`")
    type = serializers.ChoiceField(choices=EVENT_TYPE_CHOICES)
    timestamp = serializers.DateTimeField(help_text="When the change happened")
    # The body's field is called `data`, like Serializer.data (the rendered output) it shadows for mypy only:
    # this serializer documents the body and never renders.
    data = _EventDataSerializer()  # type: ignore[assignment]


# --- subscriptions -------------------------------------------------------------------------------


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    team = TeamField()
    url = serializers.CharField(max_length=2000, help_text="http(s) URL on a public address")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES), allow_empty=False, max_length=20
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "team", "url", "events", "description", "enabled", "created_at"]
        read_only_fields = ["id", "created_at"]


class WebhookSubscriptionWithSecretSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (`whsec_…`); shown on create and rotate-secret only"
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


@extend_schema_field(WebhookEventBodySerializer)
class _EventBodyField(serializers.JSONField):
    """The stored body as it was sent (documented by WebhookEventBodySerializer, rendered as stored)."""


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(source="event.public_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    payload = _EventBodyField(source="event.payload", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "retry_until",
            "last_attempt_at",
            "response_status",
            "response_body",
            "error",
            "delivered_at",
            "created_at",
            "payload",
        ]
        read_only_fields = fields


def _django_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(exc.message_dict)
    return serializers.ValidationError({"detail": exc.messages})


_EVENT_CALLBACK = OpenApiCallback(
    "incident event",
    "{$request.body#/url}",
    extend_schema(
        summary="What Backstop POSTs to the subscribed URL",
        description=SIGNATURE_HELP,
        request=WebhookEventBodySerializer,
        responses={200: None},
    ),
)


@extend_schema_view(
    create=extend_schema(responses={201: WebhookSubscriptionWithSecretSerializer}, callbacks=[_EVENT_CALLBACK]),
)
class WebhookSubscriptionViewSet(TeamScopedViewSet):
    __doc__ = "Outgoing webhooks: a team's managers subscribe URLs to incident events. " + SIGNATURE_HELP

    queryset = WebhookSubscription.objects.select_related("team")
    serializer_class = WebhookSubscriptionSerializer
    filterset_fields = ["team", "enabled"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        # Managers only, reads included: URLs and delivery logs are the team's configuration.
        queryset = super().get_queryset()
        user = self.request.user
        if user.is_staff:
            return queryset
        managed = Membership.objects.filter(user=user, role=Membership.Role.MANAGER).values("team_id")
        return queryset.filter(team_id__in=managed)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        self.require_write(data["team"])
        try:
            sub = services.subscription_create(actor=request.user, **data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(WebhookSubscriptionWithSecretSerializer(sub).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        team_move_refuse(serializer, "A webhook")
        data = serializer.validated_data
        try:
            serializer.instance = services.subscription_update(
                subscription=serializer.instance,
                actor=self.request.user,
                url=data.get("url"),
                events=data.get("events"),
                description=data.get("description"),
                enabled=data.get("enabled"),
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc

    def perform_destroy(self, instance):
        services.subscription_delete(subscription=instance, actor=self.request.user)

    @extend_schema(
        summary="Replace the signing secret; the old one keeps signing next to it for 24 hours",
        request=None,
        responses={200: WebhookSubscriptionWithSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        sub = self.get_object()
        self.require_write(sub.team)
        sub = services.subscription_secret_rotate(subscription=sub, actor=request.user)
        return Response(WebhookSubscriptionWithSecretSerializer(sub).data)

    @extend_schema(
        summary="Send a test event (`webhook.ping`) to this webhook, signed and logged like any other",
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        sub = self.get_object()
        self.require_write(sub.team)
        try:
            delivery = services.subscription_ping(subscription=sub, actor=request.user)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="The delivery log, newest first", responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"], filterset_fields=[], ordering_fields=[])
    def deliveries(self, request, pk=None):
        sub = self.get_object()
        page = self.paginate_queryset(selectors.deliveries_get(subscription=sub))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Send an event again (same id and body, a fresh signature; retried for another day)",
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]{1,18})/resend")
    def resend(self, request, pk=None, delivery_id=None):
        sub = self.get_object()
        if not can_manage_team(request.user, sub.team):
            raise exceptions.PermissionDenied("Your role on this team does not allow this change.")
        delivery = WebhookDelivery.objects.filter(subscription=sub, pk=delivery_id).first()
        if delivery is None:
            raise exceptions.NotFound("No such delivery of this webhook.")
        try:
            delivery = services.delivery_resend(delivery=delivery, actor=request.user)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
