"""Portal forms. They parse and describe input; the services validate the domain rules."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from portal.forms.common import timezone_choices
from portal.models import ContactMethod, NotificationRule
from portal.services import TOKEN_LIFETIME_CHOICES_DAYS
from portal.widgets import PlainSelect


class ProfileForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False, label="Full name")
    time_zone = forms.ChoiceField(
        choices=timezone_choices,
        label="Time zone",
        widget=PlainSelect,
        help_text="Every time in Backstop is shown in this zone.",
    )


class ContactMethodForm(forms.Form):
    kind = forms.ChoiceField(choices=ContactMethod.Kind.choices, label="Type")
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
