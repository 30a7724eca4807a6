from .incident import Incident, Page, TimelineEvent
from .outbox import OutboxMessage
from .policy import EscalationPolicy, EscalationStep, EscalationTarget

__all__ = [
    "EscalationPolicy",
    "EscalationStep",
    "EscalationTarget",
    "Incident",
    "OutboxMessage",
    "Page",
    "TimelineEvent",
]
