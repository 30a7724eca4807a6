"""Team, rotation and escalation policy forms for staff and team managers."""

from __future__ import annotations

import calendar
import re

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory

from config.parsing import small_uint
from portal.forms.common import timezone_choices
from portal.forms.roster import LocalDateTimeField
from portal.models import User
from portal.widgets import PlainSelect
from rotations.models import Membership, RotationEra
from rotations.services.validation import validate_windows


def _comma_list(value: str) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    slug = forms.SlugField(max_length=100, required=False, help_text="Used in links; empty = made from the name")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    time_zone = forms.ChoiceField(choices=timezone_choices, initial="UTC", widget=PlainSelect)
    handover_email = forms.EmailField(
        required=False, label="Handover e-mail", help_text="Also send handover summaries here"
    )
    slack_channel_id = forms.CharField(
        max_length=20,
        required=False,
        label="Slack channel id",
        help_text="Incidents are posted here, with Acknowledge / Escalate / Resolve buttons (e.g. C0123456789)",
    )
    slack_usergroup_id = forms.CharField(
        max_length=20,
        required=False,
        label="Slack on-call user group id",
        help_text="Kept equal to the people on call at every handoff (e.g. S0123456789)",
    )


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW_LINE = re.compile(r"^(?:(?P<days>[a-z ,\-]+?)\s+)?(?P<start>\d{1,2}:\d{2})\s*[-–]\s*(?P<end>\d{1,2}:\d{2})$")
EVERY_DAY = ("daily", "every day", "all", "*")


def _days_parse(text: str) -> list[int | None]:
    """ "Mon-Fri", "sat, sun", "daily" (or nothing) -> weekdays (None = every day)."""
    text = (text or "").strip()
    if not text or text in EVERY_DAY:
        return [None]
    days: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        first, _, last = (x.strip()[:3] for x in part.partition("-"))
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(part)
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        days.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return days


def windows_parse(text: str) -> list[dict]:
    """One window per line, "[days] HH:MM-HH:MM", in the rotation's zone -> service windows.

    An end at or before the start runs past midnight (Mon 22:00-06:00 ends Tuesday morning); 24:00
    is midnight at the end of the day.
    """
    out: list[dict] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip().lower()
        if not line:
            continue
        match = _WINDOW_LINE.match(line)
        try:
            if match is None:
                raise ValueError(line)
            days = _days_parse(match["days"] or "")
        except ValueError:
            raise ValidationError(
                f"Line {number} ({raw.strip()!r}): write a window as days and hours, e.g. Mon-Fri 09:00-17:00 "
                "or daily 22:00-06:00."
            ) from None
        start, end = match["start"].zfill(5), match["end"].zfill(5)
        end = "00:00" if end == "24:00" else end
        out.extend({"weekday": d, "start": start, "end": end} for d in days)
    try:
        return validate_windows(out)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict.get("restrictions", exc.messages)) from None


def windows_format(windows: list[dict]) -> str:
    """Stored windows back to the text windows_parse reads, runs of days with equal hours joined."""
    lines: list[str] = []
    by_hours: dict[tuple[str, str], list[int | None]] = {}
    for w in windows or ():
        by_hours.setdefault((w["start"], w["end"]), []).append(w.get("weekday"))
    for (start, end), days in by_hours.items():
        if None in days:
            lines.append(f"daily {start}-{end}")
        plain = sorted({d for d in days if d is not None})
        runs: list[list[int]] = []
        for d in plain:
            if runs and runs[-1][-1] == d - 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        for run in runs:
            first, last = DAY_NAMES[run[0]].title(), DAY_NAMES[run[-1]].title()
            lines.append(f"{first}-{last} {start}-{end}" if len(run) > 1 else f"{first} {start}-{end}")
    return "\n".join(lines)


class RotationForm(forms.Form):
    name = forms.CharField(max_length=100)
    time_zone = forms.ChoiceField(
        choices=timezone_choices, widget=PlainSelect, help_text="Handoffs happen at this zone's wall-clock time"
    )
    positions = forms.CharField(initial="primary, secondary", help_text="Comma-separated, e.g. primary, secondary")
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="First handoff date")
    handoff_time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"), initial="09:00")
    shift_unit = forms.ChoiceField(choices=RotationEra.Unit.choices, initial="weeks", label="Shift unit")
    shift_length = forms.IntegerField(min_value=1, max_value=365, initial=1, label="Shift length")
    restrictions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Mon-Fri 09:00-17:00"}),
        label="On call only during (follow the sun)",
        help_text="One window per line in the rotation's time zone, e.g. Mon-Fri 09:00-17:00 or daily 22:00-06:00. "
        "Empty = around the clock. Outside the windows this rotation has nobody on call.",
    )
    effective_from = LocalDateTimeField(
        required=False, label="Changes take effect from", help_text="Edits only: past shifts never change"
    )

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

    def clean_restrictions(self) -> list[dict]:
        return windows_parse(self.cleaned_data.get("restrictions", ""))

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
    repeat = forms.IntegerField(
        min_value=0,
        required=False,
        initial=0,
        help_text="Extra passes through all steps; empty = repeat until acknowledged",
    )
    ack_timeout_minutes = forms.IntegerField(
        min_value=1, required=False, label="Re-trigger after ack (minutes)", help_text="Empty = never"
    )
    auto_resolve_minutes = forms.IntegerField(
        min_value=1, required=False, label="Auto-resolve after (minutes)", help_text="Empty = never"
    )
    skip_empty_steps = forms.BooleanField(required=False, help_text="Skip a step that reaches nobody")
    reassign_on_handover = forms.BooleanField(
        required=False, initial=True, help_text="Open incidents follow the rotation to the next person"
    )
    make_default = forms.BooleanField(
        required=False, label="Team default", help_text="Use for incidents that name no policy"
    )
    raise_urgency_minutes = forms.IntegerField(
        min_value=1,
        required=False,
        label="Raise low urgency after (minutes)",
        help_text="Unacknowledged this long, a low-urgency incident becomes high urgency. Empty = never",
    )
    support_days = forms.TypedMultipleChoiceField(
        choices=list(enumerate(calendar.day_name)),
        coerce=int,
        required=False,
        label="Support hours: days",
        help_text="Outside support hours low-urgency incidents wait for them. No days = always in support",
        widget=forms.CheckboxSelectMultiple,
    )
    support_start = forms.CharField(required=False, initial="09:00", label="Support hours: from (HH:MM)")
    support_end = forms.CharField(required=False, initial="17:00", label="Support hours: until (HH:MM, 24:00 ok)")
    support_time_zone = forms.ChoiceField(
        choices=timezone_choices, initial="UTC", required=False, label="Support hours: time zone", widget=PlainSelect
    )

    def support_hours(self) -> dict:
        """The support hours as the policy service takes them ({} = always in support)."""
        d = self.cleaned_data
        if not d.get("support_days"):
            return {}
        return {
            "time_zone": d.get("support_time_zone") or "UTC",
            "days": d["support_days"],
            "start": d.get("support_start", "").strip(),
            "end": d.get("support_end", "").strip(),
        }


class StepForm(forms.Form):
    delay_minutes = forms.IntegerField(
        min_value=0,
        max_value=1440,
        initial=5,
        label="Wait (minutes)",
        help_text="Before the next step if nobody acknowledges",
    )
    positions = forms.CharField(required=False, label="On-call positions", help_text="e.g. primary")
    users = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, label="People", widget=forms.SelectMultiple(attrs={"size": 4})
    )
    whole_team = forms.BooleanField(required=False, label="Whole team")
    managers = forms.BooleanField(required=False, label="Team managers")

    def __init__(self, *args, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        if team is not None:
            self.fields["users"].queryset = User.objects.filter(memberships__team=team).order_by("full_name", "email")

    def clean(self):
        data = super().clean()
        # A step someone added (or an existing one) must say whom it notifies; an untouched spare is ignored.
        if (self.has_changed() or not self.empty_permitted) and not (
            data.get("positions") or data.get("users") or data.get("whole_team") or data.get("managers")
        ):
            raise forms.ValidationError("Choose who this step notifies: a position, people, the team or its managers.")
        return data


class BaseStepFormSet(forms.BaseFormSet):
    """Steps that the page adds, removes and reorders in the browser (static/js/policy-steps.js).

    ORDER and DELETE are ordinary fields, so without JavaScript people type the order and tick "Remove";
    with it, the script fills them in and hides them behind buttons.
    """

    default_error_messages = {
        "too_few_forms": "Add at least one step: a policy without steps pages nobody.",
        "too_many_forms": "A policy can have at most %(num)d steps.",
    }

    def add_fields(self, form, index):
        super().add_fields(form, index)
        form.fields["ORDER"].label = "Position in the list"
        form.fields["ORDER"].widget.attrs.update({"data-step-order": "", "min": "1"})
        form.fields["DELETE"].label = "Remove this step"
        form.fields["DELETE"].widget.attrs.update({"data-step-delete": ""})

    def steps_in_order(self) -> list[tuple[forms.Form, int | None]]:
        """Forms as the person arranged them (by posted order), each with its step number; removed ones get None."""

        def posted_order(pair):
            index, form = pair
            raw = form["ORDER"].value() if form.is_bound else None
            try:
                return (0, int(raw), index)
            except (TypeError, ValueError):
                return (1, 0, index)

        arranged = [f for _, f in sorted(enumerate(self.forms), key=posted_order)]
        out, number = [], 0
        for form in arranged:
            removed = form.is_bound and bool(form["DELETE"].value())
            if not removed:
                number += 1
            out.append((form, None if removed else number))
        return out


StepFormSet = formset_factory(
    StepForm,
    formset=BaseStepFormSet,
    extra=1,
    can_delete=True,
    can_order=True,
    min_num=1,
    validate_min=True,
    max_num=50,
    validate_max=True,
)


class MemberAddForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True),
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": "That person no longer exists or is deactivated."},
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ENGINEER, label="Role")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices, label="Role")
