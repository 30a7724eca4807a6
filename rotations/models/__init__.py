from .handover import (
    GapAlert,
    Handover,
    HandoverCursor,
    HandoverNote,
    NotificationPreference,
    RosterChangeNotice,
    ShiftReminder,
)
from .roster import (
    AuditEntry,
    Exclusion,
    Membership,
    Override,
    Rotation,
    RotationEra,
    RotationParticipant,
    Team,
)
from .swaps import SwapRequest

__all__ = [
    "AuditEntry",
    "Exclusion",
    "GapAlert",
    "Handover",
    "HandoverCursor",
    "HandoverNote",
    "Membership",
    "NotificationPreference",
    "Override",
    "RosterChangeNotice",
    "Rotation",
    "RotationEra",
    "RotationParticipant",
    "ShiftReminder",
    "SwapRequest",
    "Team",
]
