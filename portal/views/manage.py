"""Staff and manager pages: team, rotation and policy forms; the roster calendar."""

from __future__ import annotations

import calendar as pycalendar
import re
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.parsing import small_uint
from escalations.models import EscalationPolicy, EscalationTarget
from escalations.policies import services as policy_services
from portal import selectors
from portal.forms.common import apply_errors
from portal.forms.manage import PolicyForm, RotationForm, StepFormSet, TeamForm, _comma_list, windows_format
from portal.forms.roster import ExclusionForm, OverrideForm
from portal.permissions import can_manage_team, can_view_team
from portal.views.teams import _team_or_404
from rotations import selectors as roster_selectors
from rotations.models import Exclusion, Membership, Rotation, Team
from rotations.services import rotations as services_rotations
from rotations.services import teams as services_teams


def _require_manager(request: HttpRequest, team: Team) -> None:
    if not can_manage_team(request.user, team):
        raise PermissionDenied("Only staff and this team's managers can change it.")


# ---------------------------------------------------------------------------------- teams


@login_required
def team_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can create teams.")
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services_teams.team_create(actor=request.user, **form.cleaned_data)
            messages.success(request, f"Created {team.name}. Add members and a rotation next.")
            return redirect("portal:team", slug=team.slug)
        except ValidationError as exc:
            apply_errors(form, exc)
    return render(
        request,
        "portal/form_page.html",
        {
            "title": "New team",
            "form": form,
            "submit": "Create team",
            "back": ("portal:teams", None),
        },
        status=400 if form.errors else 200,
    )


@login_required
def team_edit(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    _require_manager(request, team)
    fields = ("name", "slug", "description", "time_zone", "handover_email", "slack_channel_id", "slack_usergroup_id")
    initial = {f: getattr(team, f) for f in fields}
    form = TeamForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services_teams.team_update(team=team, actor=request.user, **form.cleaned_data)
            messages.success(request, "Team saved.")
            return redirect("portal:team", slug=team.slug)
        except ValidationError as exc:
            apply_errors(form, exc)
    return render(
        request,
        "portal/form_page.html",
        {
            "title": f"Edit {team.name}",
            "form": form,
            "submit": "Save",
            "team": team,
        },
        status=400 if form.errors else 200,
    )


# ------------------------------------------------------------------------------ rotations


def _rotation_page(request, *, team, form, rotation=None, order=None, status=200, preview=None):
    members = [m for m in selectors.team_members_get(team=team) if m.role != Membership.Role.VIEWER]
    order = order or {}
    rows = sorted(members, key=lambda m: (order.get(m.user_id) is None, order.get(m.user_id) or 0, m.user.display_name))
    return render(
        request,
        "portal/rotation_form.html",
        {
            "team": team,
            "form": form,
            "rotation": rotation,
            "rows": [(m, order.get(m.user_id)) for m in rows],
            "preview": preview,
            "preview_url": reverse("portal:rotation_edit_preview", args=[rotation.pk])
            if rotation
            else reverse("portal:rotation_create_preview", args=[team.slug]),
        },
        status=status,
    )


PREVIEW_DAYS = 14


def _preview(request: HttpRequest, *, team: Team, rotation: Rotation | None, form: RotationForm) -> dict:
    """The posted definition resolved for the next PREVIEW_DAYS days (nothing saved): bars and gaps."""
    data = form.cleaned_data
    time_zone = rotation.time_zone if rotation is not None else data["time_zone"]
    now = timezone.now()
    starts_at = roster_selectors.era_anchor(
        start_date=data["start_date"], handoff_time=data["handoff_time"], time_zone=time_zone
    )
    if rotation is not None:
        starts_at = data.get("effective_from") or now
    first = timezone.localtime(max(now, starts_at)).date()
    tz = timezone.get_current_timezone()
    since = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    until = datetime.combine(first + timedelta(days=PREVIEW_DAYS), datetime.min.time(), tzinfo=tz)
    people = form.participants()
    draft = roster_selectors.RotationDraft(
        time_zone=time_zone,
        positions=tuple(data["positions"]),
        start_date=data["start_date"],
        handoff_time=data["handoff_time"],
        shift_unit=data["shift_unit"],
        shift_length=data["shift_length"],
        participants=tuple(u.pk for u in people),
        restrictions=tuple(data["restrictions"]),
        effective_from=data.get("effective_from") or now if rotation is not None else None,
    )
    result = roster_selectors.rotation_draft_preview_get(
        team=team, rotation=rotation, draft=draft, since=since, until=until
    )
    names = {m.user_id: m.user.display_name for m in form.members}
    rows: dict[str, dict] = {p: {"position": p, "bars": []} for p in draft.positions}
    for sh in result.shifts:
        left = _pct(sh.start, since, until)
        rows.setdefault(sh.position, {"position": sh.position, "bars": []})["bars"].append(
            {
                "left": left,
                "width": max(_pct(sh.end, since, until) - left, 0.3),
                "css": sh.reason.value,
                "label": names.get(sh.user_id, "?"),
                "start": sh.start,
                "end": sh.end,
            }
        )
    for position, start, end in result.gaps:
        left = _pct(start, since, until)
        rows[position]["bars"].append(
            {
                "left": left,
                "width": max(_pct(end, since, until) - left, 0.3),
                "css": "gap",
                "label": "Gap",
                "start": start,
                "end": end,
            }
        )
    span = (until - since).total_seconds()
    ticks = []
    for i in range(PREVIEW_DAYS):
        at = since + timedelta(days=i)
        ticks.append(((at - since).total_seconds() / span * 100, at.strftime("%a %d")))
    return {
        "since": since,
        "until": until,
        "ticks": ticks,
        "rows": list(rows.values()),
        "gaps": result.gaps,
        "no_people": not people,
    }


def _rotation_preview(request: HttpRequest, *, team: Team, rotation: Rotation | None) -> HttpResponse:
    members = selectors.team_members_get(team=team)
    initial = {"time_zone": rotation.time_zone} if rotation is not None else {}
    form = RotationForm(request.POST, members=members, initial=initial, editing=rotation is not None)
    preview = _preview(request, team=team, rotation=rotation, form=form) if form.is_valid() else None
    status = 200 if preview is not None else 400
    if request.htmx:
        return render(request, "portal/_rotation_preview.html", {"form": form, "preview": preview}, status=status)
    return _rotation_page(
        request, team=team, form=form, rotation=rotation, order=_posted_order(request), status=status, preview=preview
    )


@login_required
@require_POST
def rotation_create_preview(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    _require_manager(request, team)
    return _rotation_preview(request, team=team, rotation=None)


@login_required
@require_POST
def rotation_edit_preview(request: HttpRequest, pk: int) -> HttpResponse:
    rotation = get_object_or_404(Rotation.objects.select_related("team"), pk=pk)
    if not can_view_team(request.user, rotation.team):
        raise Http404("No such rotation.")
    _require_manager(request, rotation.team)
    return _rotation_preview(request, team=rotation.team, rotation=rotation)


def _posted_order(request) -> dict[int, int]:
    out = {}
    for key, value in request.POST.items():
        user_id, order = small_uint(key[6:]), small_uint(value)
        if key.startswith("order_") and user_id is not None and order is not None:
            out[user_id] = order
    return out


@login_required
def rotation_create(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    _require_manager(request, team)
    members = selectors.team_members_get(team=team)
    form = RotationForm(request.POST or None, members=members, initial={"time_zone": team.time_zone})
    if request.method == "POST" and form.is_valid():
        people = form.participants()
        if not people:
            form.add_error(None, "Number at least one person (1, 2, 3…) to put them in the rotation.")
        else:
            data = form.cleaned_data
            try:
                services_rotations.rotation_create(
                    team=team,
                    name=data["name"],
                    time_zone=data["time_zone"],
                    positions=data["positions"],
                    start_date=data["start_date"],
                    handoff_time=data["handoff_time"],
                    shift_unit=data["shift_unit"],
                    shift_length=data["shift_length"],
                    participants=people,
                    restrictions=data["restrictions"],
                    actor=request.user,
                )
                messages.success(request, f"Created rotation {data['name']}.")
                return redirect("portal:team", slug=team.slug)
            except ValidationError as exc:
                apply_errors(form, exc)
    return _rotation_page(
        request, team=team, form=form, order=_posted_order(request), status=400 if form.errors else 200
    )


@login_required
def rotation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rotation = get_object_or_404(Rotation.objects.select_related("team"), pk=pk)
    team = rotation.team
    if not can_view_team(request.user, team):
        raise Http404("No such rotation.")  # like _team_or_404: other teams' objects are not there
    _require_manager(request, team)
    members = selectors.team_members_get(team=team)
    at = timezone.now()
    eras = list(rotation.eras.prefetch_related("participant_links").order_by("effective_from"))
    current = next((e for e in reversed(eras) if e.effective_from <= at), eras[0] if eras else None)
    initial = {
        "name": rotation.name,
        "time_zone": rotation.time_zone,
        "positions": ", ".join(rotation.positions),
        "effective_from": timezone.localtime(at).replace(second=0, microsecond=0),
    }
    order = {}
    if current is not None:
        initial.update(
            start_date=current.start_date,
            handoff_time=current.handoff_time,
            shift_unit=current.shift_unit,
            shift_length=current.shift_length,
            restrictions=windows_format(current.restrictions),
        )
        order = {link.user_id: link.order + 1 for link in current.participant_links.all()}
    form = RotationForm(request.POST or None, members=members, initial=initial, editing=True)
    if request.method == "POST":
        order = _posted_order(request)
        if form.is_valid():
            data = form.cleaned_data
            people = form.participants()
            if not people:
                form.add_error(None, "Number at least one person (1, 2, 3…) to keep in the rotation.")
            else:
                try:
                    services_rotations.rotation_update(
                        rotation=rotation, actor=request.user, name=data["name"], positions=data["positions"]
                    )
                    services_rotations.rotation_definition_change(
                        rotation=rotation,
                        effective_from=data.get("effective_from") or at,
                        actor=request.user,
                        participants=people,
                        shift_unit=data["shift_unit"],
                        shift_length=data["shift_length"],
                        handoff_time=data["handoff_time"],
                        start_date=data["start_date"],
                        restrictions=data["restrictions"],
                    )
                    messages.success(request, f"Saved {rotation.name}; shifts before the change stay as they were.")
                    return redirect("portal:team", slug=team.slug)
                except ValidationError as exc:
                    apply_errors(form, exc)
    return _rotation_page(
        request, team=team, form=form, rotation=rotation, order=order, status=400 if form.errors else 200
    )


# ------------------------------------------------------------------------------- policies


def _policy_initial(policy: EscalationPolicy) -> tuple[dict, list[dict]]:
    head = {
        "name": policy.name,
        "description": policy.description,
        "repeat": policy.repeat,
        "ack_timeout_minutes": int(policy.ack_timeout.total_seconds() // 60) if policy.ack_timeout else None,
        "auto_resolve_minutes": int(policy.auto_resolve_after.total_seconds() // 60)
        if policy.auto_resolve_after
        else None,
        "skip_empty_steps": policy.skip_empty_steps,
        "reassign_on_handover": policy.reassign_on_handover,
        "make_default": policy.team.escalation_policy_id == policy.pk,
        "raise_urgency_minutes": int(policy.raise_urgency_after.total_seconds() // 60)
        if policy.raise_urgency_after
        else None,
    }
    if policy.support_hours:
        head |= {
            "support_days": policy.support_hours.get("days", []),
            "support_start": policy.support_hours.get("start", ""),
            "support_end": policy.support_hours.get("end", ""),
            "support_time_zone": policy.support_hours.get("time_zone", "UTC"),
        }
    steps = []
    for step in policy.steps.order_by("order").prefetch_related("targets"):
        targets = list(step.targets.all())
        steps.append(
            {
                "delay_minutes": int(step.delay.total_seconds() // 60),
                "positions": ", ".join(t.position for t in targets if t.kind == "position"),
                "users": [t.user_id for t in targets if t.kind == "user"],
                "whole_team": any(t.kind == "team" for t in targets),
                "managers": any(t.kind == "managers" for t in targets),
            }
        )
    return head, steps


def _steps_from(formset) -> list[tuple[object, policy_services.StepInput]]:
    """(form, step) in the order the person arranged them, without removed steps and untouched spares."""
    steps = []
    for f in formset.ordered_forms:
        d = f.cleaned_data
        targets = [
            policy_services.TargetInput(kind=EscalationTarget.Kind.POSITION, position=p)
            for p in _comma_list(d.get("positions", ""))
        ]
        targets += [policy_services.TargetInput(kind=EscalationTarget.Kind.USER, user=u) for u in d.get("users", [])]
        if d.get("whole_team"):
            targets.append(policy_services.TargetInput(kind=EscalationTarget.Kind.TEAM))
        if d.get("managers"):
            targets.append(policy_services.TargetInput(kind=EscalationTarget.Kind.MANAGERS))
        if not targets and not f.has_changed():
            continue  # an untouched spare step (StepForm.clean refuses a touched one without targets)
        steps.append((f, policy_services.StepInput(delay=timedelta(minutes=d["delay_minutes"]), targets=targets)))
    return steps


_STEP_ERROR = re.compile(r"^Step (\d+): (.+)$", re.S)


def _step_errors_place(exc_messages: list[str], arranged: list) -> list[str]:
    """Put the service's "Step N: ..." messages on step N's form, next to the step; returns the others."""
    unplaced = []
    for message in exc_messages:
        match = _STEP_ERROR.match(message)
        if match and 1 <= int(match.group(1)) <= len(arranged):
            arranged[int(match.group(1)) - 1].add_error(None, match.group(2))
        else:
            unplaced.append(message)
    return unplaced


def _step_error_summary(steps: list[tuple], unplaced: list[str]) -> list[str]:
    """Every step problem in one list ("Step 2: ..."), for the alert above the steps."""
    out = []
    for form, number in steps:
        if number is None:
            continue  # removed: its errors do not matter
        for name, errors in form.errors.items():
            label = "" if name == "__all__" else f"{form.fields[name].label}: "
            out += [f"Step {number}: {label}{e}" for e in errors]
    return out + unplaced


def _policy_page(request: HttpRequest, team: Team, policy: EscalationPolicy | None) -> HttpResponse:
    head, steps = _policy_initial(policy) if policy else ({"make_default": team.escalation_policy_id is None}, [])
    form = PolicyForm(request.POST or None, initial=head)
    # Bound: the posted steps are the whole truth (they may be reordered), so no per-index initial data.
    formset = StepFormSet(
        request.POST or None,
        initial=None if request.method == "POST" else (steps or None),
        prefix="steps",
        form_kwargs={"team": team},
    )
    step_errors: list[str] = []
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        d = form.cleaned_data
        arranged = _steps_from(formset)
        kwargs = dict(
            name=d["name"],
            description=d["description"],
            repeat=d["repeat"],
            actor=request.user,
            ack_timeout=timedelta(minutes=d["ack_timeout_minutes"]) if d["ack_timeout_minutes"] else None,
            auto_resolve_after=timedelta(minutes=d["auto_resolve_minutes"]) if d["auto_resolve_minutes"] else None,
            skip_empty_steps=d["skip_empty_steps"],
            reassign_on_handover=d["reassign_on_handover"],
            make_default=d["make_default"],
            raise_urgency_after=timedelta(minutes=d["raise_urgency_minutes"]) if d["raise_urgency_minutes"] else None,
            support_hours=form.support_hours(),
            steps=[step for _, step in arranged],
        )
        try:
            if policy is None:
                policy = policy_services.policy_create(team=team, **kwargs)
                messages.success(request, f"Created policy {policy.name}.")
            else:
                policy_services.policy_update(policy=policy, **kwargs)
                messages.success(request, f"Saved {policy.name}. Incidents already open keep the old steps.")
            return redirect("portal:team", slug=team.slug)
        except ValidationError as exc:
            step_errors = exc.message_dict.pop("steps", []) if hasattr(exc, "error_dict") else []
            step_errors = _step_errors_place(step_errors, [f for f, _ in arranged])
            if hasattr(exc, "error_dict"):
                for field, errs in exc.message_dict.items():
                    if field != "steps":
                        form.add_error(field if field in form.fields else None, errs)
            else:
                form.add_error(None, exc.messages)
    failed = request.method == "POST"
    steps_shown = formset.steps_in_order()
    return render(
        request,
        "portal/policy_form.html",
        {
            "team": team,
            "policy": policy,
            "form": form,
            "formset": formset,
            "steps": steps_shown,
            "step_errors": _step_error_summary(steps_shown, step_errors) if failed else [],
        },
        status=400 if failed else 200,
    )


@login_required
def policy_create(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    _require_manager(request, team)
    return _policy_page(request, team, None)


@login_required
def policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(EscalationPolicy.objects.select_related("team"), pk=pk)
    if not can_view_team(request.user, policy.team):
        raise Http404("No such policy.")
    _require_manager(request, policy.team)
    return _policy_page(request, policy.team, policy)


# ------------------------------------------------------------------------------- calendar


def _window(view: str, start_param: str | None, now: datetime) -> tuple[datetime, datetime, list[tuple[float, str]]]:
    tz = timezone.get_current_timezone()
    local_now = timezone.localtime(now)
    try:
        day = datetime.strptime(start_param or "", "%Y-%m-%d").date()  # noqa: DTZ007 (only the date is used)
    except ValueError:
        today = local_now.date()
        day = today - timedelta(days=today.weekday()) if view == "week" else today.replace(day=1)
    if view == "month":
        day = day.replace(day=1)
        length = pycalendar.monthrange(day.year, day.month)[1]
    else:
        length = 7
    since = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    until = datetime.combine(day + timedelta(days=length), datetime.min.time(), tzinfo=tz)
    span = (until - since).total_seconds()
    ticks = []
    for i in range(length):
        at = datetime.combine(day + timedelta(days=i), datetime.min.time(), tzinfo=tz)
        label = at.strftime("%a %d") if view == "week" else at.strftime("%d")
        ticks.append(((at - since).total_seconds() / span * 100, label))
    return since, until, ticks


def _pct(moment: datetime, since: datetime, until: datetime) -> float:
    span = (until - since).total_seconds()
    return max(0.0, min(100.0, (moment - since).total_seconds() / span * 100))


@login_required
def team_calendar(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    view = "month" if request.GET.get("view") == "month" else "week"
    now = timezone.now()
    since, until, ticks = _window(view, request.GET.get("start"), now)
    by_key: dict[tuple, dict] = {}
    for line in roster_selectors.team_shift_rows_get(team=team, since=since, until=until):
        key = (line.rotation_name, line.position)
        row = by_key.setdefault(
            key,
            {
                "label": f"{line.rotation_name} · {line.position}",
                "bars": [],
                "rotation_id": line.rotation_id,
                "position": line.position,
            },
        )
        left = _pct(line.start, since, until)
        row["bars"].append(
            {
                "line": line,
                "left": left,
                "width": max(_pct(line.until, since, until) - left, 0.3),
                "css": line.reason,
            }
        )
    rows = [by_key[k] for k in sorted(by_key)]
    members = [m.user for m in selectors.team_members_get(team=team)]
    exclusions = list(
        Exclusion.objects.filter(user__in=members, start__lt=until, end__gt=since)
        .select_related("user")
        .order_by("start")
    )
    away = []
    for x in exclusions:
        left = _pct(x.start, since, until)
        away.append({"x": x, "left": left, "width": max(_pct(x.end, since, until) - left, 0.3)})
    step = timedelta(days=7) if view == "week" else timedelta(days=32)
    prev_start = (since - (timedelta(days=1) if view == "month" else step)).date()
    if view == "month":
        prev_start = prev_start.replace(day=1)
    next_start = (since + step).date().replace(day=1) if view == "month" else (since + step).date()
    return render(
        request,
        "portal/calendar.html",
        {
            "team": team,
            "view": view,
            "since": since,
            "until": until,
            "ticks": ticks,
            "rows": rows,
            "away": away,
            "now_left": _pct(now, since, until) if since <= now < until else None,
            "prev_start": prev_start.isoformat(),
            "next_start": next_start.isoformat(),
            "can_manage": can_manage_team(request.user, team),
        },
    )


@login_required
def team_override_new(request: HttpRequest, slug: str) -> HttpResponse:
    """The override form, prefilled from a calendar bar (rotation, position or person, window)."""
    team = _team_or_404(request, slug)
    initial = {
        k: request.GET.get(k) for k in ("rotation", "position", "replaces_user", "start", "end") if request.GET.get(k)
    }
    form = OverrideForm(initial=initial, user=request.user, team=team)
    return render(
        request,
        "portal/override_form.html",
        {
            "team": team,
            "form": form,
            "next": f"/teams/{team.slug}/calendar/",
        },
    )


@login_required
def team_exclusion_new(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug)
    initial = {k: request.GET.get(k) for k in ("user", "start", "end") if request.GET.get(k)}
    form = ExclusionForm(initial=initial)
    return render(
        request,
        "portal/exclusion_form.html",
        {
            "team": team,
            "form": form,
            "next": f"/teams/{team.slug}/calendar/",
        },
    )
