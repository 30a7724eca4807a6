"""Exclusion and override forms. Times are typed in the viewer's own time zone."""

from __future__ import annotations

from django import forms

from portal.models import User
from portal.permissions import user_team_ids
from rotations.models import Exclusion, Membership, Rotation

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


class LocalDateTimeField(forms.DateTimeField):
    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, **kwargs):
        kwargs.setdefault("input_formats", LOCAL_FORMATS)
        super().__init__(**kwargs)


class _SpanForm(forms.Form):
    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        return data


class ExclusionForm(_SpanForm):
    user = forms.ModelChoiceField(queryset=User.objects.all(), required=False, widget=forms.HiddenInput)
    kind = forms.ChoiceField(choices=Exclusion.Kind.choices, label="Why")
    start = LocalDateTimeField(label="From")
    end = LocalDateTimeField(label="Until")
    reason = forms.CharField(max_length=200, required=False, label="Note", help_text="Optional, visible to your team")


class OverrideForm(_SpanForm):
    rotation = forms.ModelChoiceField(queryset=Rotation.objects.none(), label="Rotation")
    position = forms.CharField(max_length=40, required=False, label="Take position",
                               help_text="e.g. primary — or leave empty and pick a person below")
    replaces_user = forms.ModelChoiceField(queryset=User.objects.none(), required=False,
                                           label="…or take the shifts of")
    taker = forms.ModelChoiceField(queryset=User.objects.none(), required=False, label="Who takes the pager",
                                   help_text="Empty: you")
    start = LocalDateTimeField(label="From")
    end = LocalDateTimeField(label="Until")
    reason = forms.CharField(max_length=200, required=False, label="Reason")

    def __init__(self, *args, user, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        team_ids = {team.pk} if team is not None else user_team_ids(user=user)
        self.fields["rotation"].queryset = Rotation.objects.filter(team_id__in=team_ids).select_related("team")
        self.fields["rotation"].label_from_instance = lambda r: f"{r.team.name} · {r.name}"
        people = User.objects.filter(
            memberships__team_id__in=team_ids, memberships__role__in=[Membership.Role.MANAGER, Membership.Role.ENGINEER]
        ).distinct().order_by("full_name", "email")
        self.fields["replaces_user"].queryset = people
        self.fields["taker"].queryset = people

    def clean(self):
        data = super().clean()
        if not data.get("position") and not data.get("replaces_user"):
            self.add_error("position", "Name a position to take, or pick the person whose shifts you take.")
        if data.get("position") and data.get("replaces_user"):
            self.add_error("replaces_user", "Take either a position or a person's shifts, not both.")
        rotation = data.get("rotation")
        if rotation and data.get("position") and data["position"] not in rotation.positions:
            self.add_error("position", f"{rotation.name} has no position {data['position']!r}; "
                                       f"it has {', '.join(rotation.positions)}.")
        return data
