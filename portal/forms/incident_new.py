"""Open an incident by hand ("page the on-call of team X"), as PagerDuty's New Incident."""

from __future__ import annotations

import re

from django import forms
from django.urls import reverse

from escalations.models import Incident
from portal.widgets import PlainSelect

NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,32}")


class IncidentNewForm(forms.Form):
    team = forms.CharField(max_length=100, label="Team to page")
    title = forms.CharField(max_length=1024, label="What is wrong", help_text="One line, e.g. 'Checkout returns 502'")
    details = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), max_length=10000, required=False, label="Details"
    )
    urgency = forms.ChoiceField(
        choices=Incident.Urgency.choices,
        initial=Incident.Urgency.HIGH,
        label="Urgency",
        help_text="High pages now by every rule; low follows the people's low-urgency rules",
        widget=PlainSelect,
    )
    severity = forms.ChoiceField(
        choices=Incident.Severity.choices, initial=Incident.Severity.ERROR, label="Severity", widget=PlainSelect
    )
    # Set when the form is shown: submitting it twice (a double tap on a phone) opens one incident.
    nonce = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, team_choices: list[tuple[str, str]] | None, **kwargs) -> None:
        """`team_choices` (slug, name) renders a <select>; None a search field (staff see every team)."""
        super().__init__(*args, **kwargs)
        if team_choices is not None:
            self.fields["team"].widget = PlainSelect(choices=[("", "Choose a team")] + team_choices)
        else:
            self.fields["team"].widget = forms.TextInput(
                attrs={
                    "list": "incident-new-team-options",
                    "autocomplete": "off",
                    "placeholder": "Team name",
                    "hx-get": reverse("portal:team_options"),
                    "hx-trigger": "focus once, input changed delay:250ms",
                    "hx-target": "#incident-new-team-options",
                    "hx-swap": "innerHTML",
                }
            )

    def clean_nonce(self) -> str:
        nonce = self.cleaned_data.get("nonce", "")
        return nonce if NONCE_RE.fullmatch(nonce or "") else ""
