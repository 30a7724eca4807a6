"""Django admin for escalations, one module per room; importing them registers the ModelAdmins."""

from escalations.admin import incidents, intake, phone

__all__ = ["incidents", "intake", "phone"]
