from .incident import Incident, Page, TimelineEvent
from .outbox import OutboxMessage
from .phone import BlockedNumber, CallRecord, CustomerContact, CustomerPhone, PhoneLine, PhoneMenuOption
from .policy import EscalationPolicy, EscalationStep, EscalationTarget

__all__ = [
    "BlockedNumber",
    "CallRecord",
    "CustomerContact",
    "CustomerPhone",
    "EscalationPolicy",
    "EscalationStep",
    "EscalationTarget",
    "Incident",
    "OutboxMessage",
    "Page",
    "PhoneLine",
    "PhoneMenuOption",
    "TimelineEvent",
]
