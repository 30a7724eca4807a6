from .incident import Incident, Page, TimelineEvent
from .intake import Alert, AlertGroupMember, ChangeEvent, Heartbeat, Integration, MaintenanceWindow
from .policy import EscalationPolicy, EscalationStep, EscalationTarget

__all__ = [
    "Alert",
    "AlertGroupMember",
    "ChangeEvent",
    "EscalationPolicy",
    "EscalationStep",
    "EscalationTarget",
    "Heartbeat",
    "Incident",
    "Integration",
    "MaintenanceWindow",
    "Page",
    "TimelineEvent",
]
