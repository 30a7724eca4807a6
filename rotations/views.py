"""Portal pages for handovers: the handover-note form and the team's handover log."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from portal.permissions import can_view_team, can_work_incidents
from rotations.handover import HANDOVER_NOTE_MAX, handover_log_get, handover_note_add, team_positions_get
from rotations.models import HandoverNote, Team


class HandoverNoteForm(forms.Form):
    position = forms.ChoiceField(required=False, help_text="Leave empty for any position you hand over")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=HANDOVER_NOTE_MAX, label="Note")

    def __init__(self, *args, team: Team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["position"].choices = [("", "Any position")] + [(p, p) for p in team_positions_get(team=team)]


@login_required
def handover_note(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    if not can_work_incidents(request.user, team):
        raise PermissionDenied
    status = 200
    if request.method == "POST":
        form = HandoverNoteForm(request.POST, team=team)
        if form.is_valid():
            try:
                handover_note_add(
                    team=team,
                    author=request.user,
                    text=form.cleaned_data["text"],
                    position=form.cleaned_data["position"],
                    now=timezone.now(),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Handover note saved; it goes out with your next handover.")
                return redirect("rotations:handover-note", slug=team.slug)
        status = 400
    else:
        # "Write a handover note" on Now and the team page names the position being held.
        form = HandoverNoteForm(initial={"position": request.GET.get("position", "")[:40]}, team=team)
    notes = HandoverNote.objects.filter(team=team, author=request.user).order_by("-created_at")[:10]
    return render(request, "rotations/handover_note.html", {"team": team, "form": form, "notes": notes}, status=status)


@login_required
def handover_log(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    if not can_view_team(request.user, team):
        raise PermissionDenied
    return render(request, "rotations/handover_log.html", {"team": team, "handovers": handover_log_get(team=team)})
