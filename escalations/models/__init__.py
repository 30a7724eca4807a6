from .incident import Incident, Page, TimelineEvent
from .policy import EscalationPolicy, EscalationStep, EscalationTarget

__all__ = [
    "EscalationPolicy",
    "EscalationStep",
    "EscalationTarget",
    "Incident",
    "Page",
    "TimelineEvent",
]
