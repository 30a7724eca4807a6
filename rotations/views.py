"""Portal pages for handovers: the handover-note form and the team's handover log."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from portal.permissions import can_view_team, can_work_incidents
from rotations.handover import handover_log_get, handover_note_add
from rotations.models import HandoverNote, Team


class HandoverNoteForm(forms.Form):
    position = forms.ChoiceField(required=False, help_text="Leave empty for any position you hand over")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=5000)

    def __init__(self, *args, team: Team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        positions: dict[str, None] = {}
        for rotation in team.rotations.all():
            for position in rotation.positions:
                positions.setdefault(position, None)
        self.fields["position"].choices = [("", "Any position")] + [(p, p) for p in positions]


@login_required
def handover_note(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    if not can_work_incidents(request.user, team):
        raise PermissionDenied
    form = HandoverNoteForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        handover_note_add(
            team=team,
            author=request.user,
            text=form.cleaned_data["text"],
            position=form.cleaned_data["position"],
            now=timezone.now(),
        )
        messages.success(request, "Handover note saved; it goes out with your next handover.")
        return redirect("rotations:handover-note", slug=team.slug)
    notes = HandoverNote.objects.filter(team=team, author=request.user).order_by("-created_at")[:10]
    return render(request, "rotations/handover_note.html", {"team": team, "form": form, "notes": notes})


@login_required
def handover_log(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    if not can_view_team(request.user, team):
        raise PermissionDenied
    return render(request, "rotations/handover_log.html", {"team": team, "handovers": handover_log_get(team=team)})
