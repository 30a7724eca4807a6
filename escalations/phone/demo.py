"""The demo's emergency line and its known customers."""

from __future__ import annotations

from escalations.models import (
    CustomerContact,
    CustomerPhone,
    PhoneLine,
    PhoneMenuOption,
)
from portal.models import User
from rotations.models import Team


def demo_phone_line_seed(teams: dict[str, Team], users: dict[str, User]) -> None:
    """The demo's emergency line: +15550100999 for Payments, menu 1 Payments / 2 Platform."""
    payments, platform = teams.get("Payments"), teams.get("Platform")
    if payments is None or platform is None:
        return
    line, created = PhoneLine.objects.get_or_create(
        number="+15550100999",
        defaults={
            "name": "Emergency line",
            "team": payments,
            "menu_enabled": True,
            "sms_confirmation": True,
            "business_hours": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}],
            "time_zone": "Europe/Berlin",
            "business_hours_message": "Our office is closed. This line still reaches the engineer on call.",
        },
    )
    if created:
        PhoneMenuOption.objects.create(line=line, digit=1, label="payments", team=payments)
        PhoneMenuOption.objects.create(line=line, digit=2, label="the platform", team=platform)
    for organisation, name, number in [
        ("Acme Retail", "Dana Whitfield", "+15550142001"),
        ("Globex Logistics", "Ravi Patel", "+15550142002"),
    ]:
        contact, _ = CustomerContact.objects.get_or_create(
            organisation=organisation, name=name, defaults={"notes": "Demo customer"}
        )
        CustomerPhone.objects.get_or_create(number=number, defaults={"contact": contact})
