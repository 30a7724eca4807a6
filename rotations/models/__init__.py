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

__all__ = [
    "AuditEntry",
    "Exclusion",
    "Membership",
    "Override",
    "Rotation",
    "RotationEra",
    "RotationParticipant",
    "Team",
]
