from .incident import EmailActionUse, Incident, Page, TimelineEvent
from .intake import (
    Alert,
    AlertGroupMember,
    ChangeEvent,
    Heartbeat,
    InboxEvent,
    Integration,
    MaintenanceWindow,
)
from .monitoring import SwitchPing
from .outbox import OutboxMessage
from .phone import BlockedNumber, CallRecord, CustomerContact, CustomerPhone, PhoneLine, PhoneMenuOption
from .policy import EscalationPolicy, EscalationStep, EscalationTarget
from .slack import SlackInboundRequest, SlackIncidentMessage
from .webhooks import WebhookDelivery, WebhookEvent, WebhookSubscription

__all__ = [
    "Alert",
    "AlertGroupMember",
    "BlockedNumber",
    "CallRecord",
    "ChangeEvent",
    "CustomerContact",
    "CustomerPhone",
    "EmailActionUse",
    "EscalationPolicy",
    "EscalationStep",
    "EscalationTarget",
    "Heartbeat",
    "InboxEvent",
    "Incident",
    "Integration",
    "MaintenanceWindow",
    "OutboxMessage",
    "Page",
    "PhoneLine",
    "PhoneMenuOption",
    "SwitchPing",
    "TimelineEvent",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSubscription",
    "SlackIncidentMessage",
    "SlackInboundRequest",
]
