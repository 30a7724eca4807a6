"""Integration, maintenance-window and heartbeat forms (team managers and staff). They parse; the
intake services validate against the team and write."""

from __future__ import annotations

from django import forms

from escalations.models import EscalationPolicy, Integration
from portal.forms.roster import LocalDateTimeField
from rotations.models import Team


def _team_choices(field: forms.ModelChoiceField, queryset, empty: str) -> None:
    """Offer only the team's objects, while the field accepts any id: the service then refuses another
    team's with a field error (the same check the API and the admin meet)."""
    field.widget.choices = [("", empty)] + [(o.pk, str(o.name)) for o in queryset]


class IntegrationForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(
        choices=Integration.Kind.choices,
        help_text="PagerDuty-compatible senders (pdpyras, Grafana, …), Alertmanager, any JSON/form webhook, "
        "or heartbeats",
    )
    urgency_rule = forms.ChoiceField(choices=Integration.UrgencyRule.choices, label="Urgency")
    policy = forms.ModelChoiceField(
        queryset=EscalationPolicy.objects.all(),
        required=False,
        label="Escalation policy",
        help_text="Empty: the team's default policy",
    )

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        policy = self.fields["policy"]
        assert isinstance(policy, forms.ModelChoiceField)
        _team_choices(policy, EscalationPolicy.objects.filter(team=team).order_by("name"), "Team default")


class MaintenanceWindowForm(forms.Form):
    start = LocalDateTimeField(help_text="In your time zone")
    end = LocalDateTimeField()
    integration = forms.ModelChoiceField(
        queryset=Integration.objects.all(), required=False, help_text="Empty: every integration of the team"
    )
    reason = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        integration = self.fields["integration"]
        assert isinstance(integration, forms.ModelChoiceField)
        _team_choices(integration, Integration.objects.filter(team=team).order_by("name"), "All integrations")


class HeartbeatForm(forms.Form):
    name = forms.CharField(max_length=100)
    interval_minutes = forms.IntegerField(
        min_value=1, max_value=31 * 24 * 60, initial=5, label="Expected every (minutes)"
    )
    grace_minutes = forms.IntegerField(
        min_value=0, max_value=7 * 24 * 60, initial=1, label="Grace (minutes)", help_text="Late, not yet down"
    )
    integration = forms.ModelChoiceField(
        queryset=Integration.objects.all(),
        required=False,
        help_text="Its incidents escalate with this integration's policy; empty: the team default",
    )

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        integration = self.fields["integration"]
        assert isinstance(integration, forms.ModelChoiceField)
        _team_choices(integration, Integration.objects.filter(team=team).order_by("name"), "None")


class ConfirmForm(forms.Form):
    """A destructive action (rotate a key, delete) needs the box ticked."""

    confirm = forms.BooleanField(
        required=True, error_messages={"required": "Tick the box to confirm: this cannot be undone."}
    )
