"""Exclusion and override forms. Times are typed in the viewer's own time zone."""

from __future__ import annotations

from django import forms
from django.db.models import Q

from config.parsing import small_uint
from portal.models import User
from portal.widgets import PlainSelect
from rotations.models import Exclusion, Membership, Rotation

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


def _rotation_label(rotation: Rotation) -> str:
    return f"{rotation.team.name} · {rotation.name}"


def _offer(form: forms.Form, name: str, queryset) -> None:
    """Render `name` with the choices of `queryset` (plus the value already chosen), while the field
    still validates against its wider queryset."""
    field = form.fields[name]
    chosen = small_uint(form.data.get(form.add_prefix(name))) if form.is_bound else None
    if chosen is not None:
        queryset = queryset | field.queryset.filter(pk=chosen)
    shown = forms.ModelChoiceField(queryset=queryset, required=field.required)
    shown.label_from_instance = field.label_from_instance
    field.widget.choices = shown.choices


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
    rotation = forms.ModelChoiceField(queryset=Rotation.objects.none(), label="Rotation", widget=PlainSelect)
    position = forms.CharField(
        max_length=40,
        required=False,
        label="Take position",
        help_text="e.g. primary — or leave empty and pick a person below",
    )
    replaces_user = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label="…or take the shifts of", widget=PlainSelect
    )
    taker = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Who takes the pager",
        help_text="Empty: you",
        widget=PlainSelect,
    )
    start = LocalDateTimeField(label="From")
    end = LocalDateTimeField(label="Until")
    reason = forms.CharField(max_length=200, required=False, label="Reason")
    # The team whose rotations and people the pickers offer (a slug); empty: the user's own teams.
    team = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, team=None, **kwargs):
        # My schedule shows this form next to the time-off and swap forms: ids of its own, so each label
        # names this form's field (the field names, which the POST uses, stay the same).
        kwargs.setdefault("auto_id", "override_%s")
        super().__init__(*args, **kwargs)
        # Accepted: any rotation or person of a team the user can see. Offered: only those of `team`
        # or of the user's own teams — staff can see a thousand teams and four thousand people.
        seen = Q() if user.is_staff else Q(team__memberships__user=user)
        offered = Q(team_id=team.pk) if team is not None else Q(team__memberships__user=user)
        if team is not None:
            self.fields["team"].initial = team.slug
        rotations = Rotation.objects.select_related("team").order_by("team__name", "name", "pk")
        self.fields["rotation"].queryset = rotations.filter(seen).distinct()
        self.fields["rotation"].label_from_instance = _rotation_label
        _offer(self, "rotation", rotations.filter(offered).distinct())
        # One filter() per queryset: the role and the team must be those of the same membership.
        workers = [Membership.Role.MANAGER, Membership.Role.ENGINEER]
        people = User.objects.order_by("full_name", "email")
        if user.is_staff:
            seen_people = people.filter(memberships__role__in=workers)
        else:
            seen_people = people.filter(memberships__role__in=workers, memberships__team__memberships__user=user)
        if team is not None:
            offered_people = people.filter(memberships__role__in=workers, memberships__team_id=team.pk)
        else:
            offered_people = people.filter(memberships__role__in=workers, memberships__team__memberships__user=user)
        for name in ("replaces_user", "taker"):
            self.fields[name].queryset = seen_people.distinct()
            _offer(self, name, offered_people.distinct())

    def clean(self):
        data = super().clean()
        if not data.get("position") and not data.get("replaces_user"):
            self.add_error("position", "Name a position to take, or pick the person whose shifts you take.")
        if data.get("position") and data.get("replaces_user"):
            self.add_error("replaces_user", "Take either a position or a person's shifts, not both.")
        rotation = data.get("rotation")
        if rotation and data.get("position") and data["position"] not in rotation.positions:
            self.add_error(
                "position",
                f"{rotation.name} has no position {data['position']!r}; it has {', '.join(rotation.positions)}.",
            )
        return data


class ExclusionEditForm(_SpanForm):
    """Change one's own time off: the person stays; the kind, window and note move."""

    kind = forms.ChoiceField(choices=Exclusion.Kind.choices, label="Why")
    start = LocalDateTimeField(label="From")
    end = LocalDateTimeField(label="Until")
    reason = forms.CharField(max_length=200, required=False, label="Note", help_text="Optional, visible to your team")


class OverrideEditForm(_SpanForm):
    """Move or shorten an override; who takes and what is taken stay (cancel and create anew to change them)."""

    start = LocalDateTimeField(label="From")
    end = LocalDateTimeField(label="Until")
    reason = forms.CharField(max_length=200, required=False, label="Reason")


class SwapRequestForm(_SpanForm):
    """Ask a colleague to take one's shifts of a rotation for a window; the services check the team."""

    rotation = forms.ModelChoiceField(queryset=Rotation.objects.none(), label="Rotation", widget=PlainSelect)
    taker = forms.ModelChoiceField(queryset=User.objects.none(), label="Ask", widget=PlainSelect)
    start = LocalDateTimeField(label="From")
    end = LocalDateTimeField(label="Until")
    reason = forms.CharField(max_length=200, required=False, label="Message", help_text="e.g. 'family visit'")

    def __init__(self, *args, user, **kwargs):
        kwargs.setdefault("auto_id", "swap_%s")  # next to the time-off and override forms: own ids
        super().__init__(*args, **kwargs)
        workers = [Membership.Role.MANAGER, Membership.Role.ENGINEER]
        rotations = Rotation.objects.select_related("team").order_by("team__name", "name", "pk")
        self.fields["rotation"].queryset = rotations.filter(
            team__memberships__user=user, team__memberships__role__in=workers
        ).distinct()
        self.fields["rotation"].label_from_instance = _rotation_label
        self.fields["taker"].queryset = (
            User.objects.filter(memberships__role__in=workers, memberships__team__memberships__user=user)
            .exclude(pk=user.pk)
            .order_by("full_name", "email")
            .distinct()
        )
