"""Portal forms. They parse and describe input; the services validate the domain rules."""

from __future__ import annotations

import re
from datetime import timedelta

from django import forms

from portal.forms.common import timezone_choices
from portal.models import ContactMethod, NotificationRule
from portal.services import TOKEN_LIFETIME_CHOICES_DAYS
from portal.widgets import PlainSelect
from rotations.models import NotificationPreference


class ProfileForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False, label="Full name")
    time_zone = forms.ChoiceField(
        choices=timezone_choices,
        label="Time zone",
        widget=PlainSelect,
        help_text="Every time in Backstop is shown in this zone.",
    )


class ContactMethodForm(forms.Form):
    # Slack is connected with its own button (the id comes from Slack, not from the person).
    kind = forms.ChoiceField(
        choices=[c for c in ContactMethod.Kind.choices if c[0] != ContactMethod.Kind.SLACK], label="Type"
    )
    value = forms.CharField(
        max_length=254,
        label="Number or address",
        help_text="Phone numbers in international format, e.g. +4915123456789",
    )
    label = forms.CharField(max_length=60, required=False, label="Label", help_text="e.g. work mobile")


class VerifyForm(forms.Form):
    code = forms.CharField(
        max_length=8,
        label="6-digit code",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"}),
    )


class NotificationRuleForm(forms.Form):
    contact_method = forms.ModelChoiceField(queryset=ContactMethod.objects.none(), label="Notify me by")
    delay_minutes = forms.IntegerField(min_value=0, max_value=120, initial=0, label="After (minutes)")
    urgency = forms.ChoiceField(choices=NotificationRule.Urgency.choices, label="For")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_method"].queryset = ContactMethod.objects.filter(user=user).order_by("kind", "id")

    @property
    def delay(self) -> timedelta:
        return timedelta(minutes=self.cleaned_data["delay_minutes"])


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name", help_text="Where it is used, e.g. 'laptop CLI'")
    expires_in_days = forms.TypedChoiceField(
        label="Expires after",
        coerce=int,
        initial=90,
        required=False,
        empty_value=90,  # type: ignore[arg-type]  # the stubs allow str only; Django takes any value
        widget=PlainSelect,
        choices=[(days, f"{days} days") for days in TOKEN_LIFETIME_CHOICES_DAYS],
        help_text="The token stops working then; create a new one before it does.",
    )

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.cleaned_data["expires_in_days"])


_LEAD_UNITS = {"m": 1, "min": 1, "mins": 1, "minutes": 1, "h": 60, "hr": 60, "hours": 60, "d": 1440, "days": 1440}
_LEAD_RE = re.compile(r"^(\d{1,5})\s*([a-z]*)$")


def leads_parse(text: str) -> list[int]:
    """ "24h, 1h, 15m" -> [1440, 60, 15] (a bare number is minutes); the service checks the range."""
    leads = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        match = _LEAD_RE.match(part)
        if match is None or match.group(2) not in {"", *_LEAD_UNITS}:
            raise forms.ValidationError(f"{part!r}: write each reminder as minutes, hours or days, e.g. 24h, 1h, 15m.")
        leads.append(int(match.group(1)) * _LEAD_UNITS.get(match.group(2), 1))
    return leads


def leads_text(minutes: list[int]) -> str:
    """[1440, 60, 15] -> "24h, 1h, 15m" (the form's initial value)."""
    parts = []
    for m in minutes:
        parts.append(f"{m // 60}h" if m % 60 == 0 else f"{m}m")
    return ", ".join(parts)


class NotificationPreferenceForm(forms.Form):
    reminder_leads = forms.CharField(
        max_length=100,
        required=False,
        label="Remind me before each shift",
        help_text="e.g. 24h, 1h, 15m — empty: no reminders",
    )
    reminder_kinds = forms.MultipleChoiceField(
        choices=NotificationPreference.Kind.choices, widget=forms.CheckboxSelectMultiple, label="Reminders by"
    )
    handover_kinds = forms.MultipleChoiceField(
        choices=NotificationPreference.Kind.choices, widget=forms.CheckboxSelectMultiple, label="Handover messages by"
    )
    roster_change_kinds = forms.MultipleChoiceField(
        choices=NotificationPreference.Kind.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Roster-change notices by",
    )

    def clean_reminder_leads(self) -> list[int]:
        return leads_parse(self.cleaned_data["reminder_leads"])
