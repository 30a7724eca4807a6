"""Reads for the API and the portal."""

from __future__ import annotations

from django.db.models import QuerySet

from escalations.models import WebhookDelivery, WebhookSubscription
from rotations.models import Team


def subscriptions_get(*, team: Team) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(team=team).order_by("pk")


def deliveries_get(*, subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    """The delivery log, newest first."""
    return (
        WebhookDelivery.objects.filter(subscription=subscription).select_related("event").order_by("-created_at", "-pk")
    )
