"""The webhook form (team managers and staff). It parses; escalations.webhooks.services validates the URL
(public addresses only) and the events, and writes."""

from __future__ import annotations

from django import forms

from escalations.webhooks.events import EVENT_TYPES


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=2000,
        label="URL",
        help_text="Where Backstop POSTs the events (https:// on a public address)",
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/backstop"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(key, f"{key} — {label}") for key, label in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=list(EVENT_TYPES),
    )
    description = forms.CharField(max_length=200, required=False)
