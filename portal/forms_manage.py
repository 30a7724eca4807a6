"""Team, rotation and escalation policy forms for staff and team managers."""

from __future__ import annotations

from django import forms
from django.forms import formset_factory

from portal.forms import timezone_choices
from portal.forms_roster import LocalDateTimeField
from portal.models import User
from portal.parsing import small_uint
from portal.widgets import PlainSelect
from rotations.models import Membership, RotationEra


def _comma_list(value: str) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    slug = forms.SlugField(max_length=100, required=False, help_text="Used in links; empty = made from the name")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    time_zone = forms.ChoiceField(choices=timezone_choices, initial="UTC", widget=PlainSelect)
    handover_email = forms.EmailField(required=False, label="Handover e-mail",
                                      help_text="Also send handover summaries here")


class RotationForm(forms.Form):
    name = forms.CharField(max_length=100)
    time_zone = forms.ChoiceField(choices=timezone_choices, widget=PlainSelect,
                                  help_text="Handoffs happen at this zone's wall-clock time")
    positions = forms.CharField(initial="primary, secondary", help_text="Comma-separated, e.g. primary, secondary")
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="First handoff date")
    handoff_time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"), initial="09:00")
    shift_unit = forms.ChoiceField(choices=RotationEra.Unit.choices, initial="weeks", label="Shift unit")
    shift_length = forms.IntegerField(min_value=1, max_value=365, initial=1, label="Shift length")
    effective_from = LocalDateTimeField(required=False, label="Changes take effect from",
                                        help_text="Edits only: past shifts never change")

    def __init__(self, *args, members: list[Membership], editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.members = [m for m in members if m.role != Membership.Role.VIEWER]
        if editing:
            self.fields["time_zone"].disabled = True
            self.fields["time_zone"].help_text = "Fixed: changing it would move past shifts"
        else:
            del self.fields["effective_from"]

    def clean_positions(self) -> list[str]:
        positions = _comma_list(self.cleaned_data["positions"])
        if not positions:
            raise forms.ValidationError("Name at least one position, e.g. primary.")
        if len(set(positions)) != len(positions):
            raise forms.ValidationError("Each position name must be different.")
        return positions

    def participants(self) -> list[User]:
        """Members given an order number, in that order (ties by name)."""
        chosen = []
        for m in self.members:
            order = small_uint(self.data.get(f"order_{m.user_id}") or "")
            if order is not None:
                chosen.append((order, m.user.display_name, m.user))
        return [u for _, _, u in sorted(chosen, key=lambda c: (c[0], c[1]))]


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    repeat = forms.IntegerField(min_value=0, required=False, initial=0,
                                help_text="Extra passes through all steps; empty = repeat until acknowledged")
    ack_timeout_minutes = forms.IntegerField(min_value=1, required=False, label="Re-trigger after ack (minutes)",
                                             help_text="Empty = never")
    auto_resolve_minutes = forms.IntegerField(min_value=1, required=False, label="Auto-resolve after (minutes)",
                                              help_text="Empty = never")
    skip_empty_steps = forms.BooleanField(required=False, help_text="Skip a step that reaches nobody")
    reassign_on_handover = forms.BooleanField(required=False, initial=True,
                                              help_text="Open incidents follow the rotation to the next person")
    make_default = forms.BooleanField(required=False, label="Team default",
                                      help_text="Use for incidents that name no policy")


class StepForm(forms.Form):
    delay_minutes = forms.IntegerField(min_value=0, max_value=1440, initial=5, label="Wait (minutes)",
                                       help_text="Before the next step if nobody acknowledges")
    positions = forms.CharField(required=False, label="On-call positions", help_text="e.g. primary")
    users = forms.ModelMultipleChoiceField(queryset=User.objects.none(), required=False, label="People",
                                           widget=forms.SelectMultiple(attrs={"size": 4}))
    whole_team = forms.BooleanField(required=False, label="Whole team")
    managers = forms.BooleanField(required=False, label="Team managers")

    def __init__(self, *args, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        if team is not None:
            self.fields["users"].queryset = User.objects.filter(memberships__team=team).order_by("full_name", "email")

    def clean(self):
        data = super().clean()
        if self.has_changed() and not (data.get("positions") or data.get("users") or data.get("whole_team")
                                       or data.get("managers")):
            raise forms.ValidationError("Choose who this step notifies: a position, people, the team or its managers.")
        return data


StepFormSet = formset_factory(StepForm, extra=1, can_delete=True, min_num=1, validate_min=True)
