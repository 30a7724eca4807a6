"""iCal feeds of shifts: secret-token URLs that calendar apps poll (no session, no API token)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.views.decorators.http import require_GET
from icalendar import Alarm, Calendar, Event

from config.parsing import small_uint
from rotations import selectors
from rotations.models import Team
from rotations.schedule import Reason, Shift

PAST = timedelta(days=30)
FUTURE = timedelta(days=180)
MAX_ALARM_MINUTES = 7 * 24 * 60


def shift_uid(shift: Shift, era_id: int) -> str:
    """Stable across requests and feed windows: segments are unclipped (see selectors) and keyed by era pk."""
    start = shift.start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{shift.rotation_id}-{era_id}-{shift.shift_index}-{shift.position}-{start}@backstop"


def _label(shift: Shift, users: dict, *, with_holder: bool, rotation_name: str) -> str:
    text = f"{rotation_name} {shift.position}"
    if with_holder:
        holder = users.get(shift.user_id)
        text += f": {holder.display_name if holder else 'nobody on call'}"
    if shift.reason in (Reason.COVER, Reason.OVERRIDE) and shift.scheduled_user_id not in (None, shift.user_id):
        covered = users.get(shift.scheduled_user_id)
        if covered is not None:
            text += f" (covering {covered.display_name})"
    return text


def calendar_build(
    *,
    name: str,
    shifts: list[Shift],
    data: selectors.RosterData,
    with_holder: bool,
    alarm_minutes: int | None,
    now: datetime,
) -> bytes:
    user_ids = {u for s in shifts for u in (s.user_id, s.scheduled_user_id) if u is not None}
    users = get_user_model().objects.in_bulk(user_ids) if user_ids else {}
    cal = Calendar()
    cal.add("prodid", "-//Backstop//On-call shifts//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for shift in shifts:
        if shift.user_id is None and not with_holder:
            continue
        rotation_name = data.rotation_names[shift.rotation_id]
        event = Event()
        event.add("uid", shift_uid(shift, data.era_ids[(shift.rotation_id, shift.era_index)]))
        event.add("dtstamp", now.astimezone(UTC))
        event.add("dtstart", shift.start.astimezone(UTC))
        event.add("dtend", shift.end.astimezone(UTC))
        event.add("summary", _label(shift, users, with_holder=with_holder, rotation_name=rotation_name))
        event.add("description", f"Reason: {shift.reason}")
        event.add("categories", [str(shift.reason)])
        event.add("transp", "OPAQUE")
        if alarm_minutes is not None:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"On call soon: {rotation_name} {shift.position}")
            alarm.add("trigger", timedelta(minutes=-alarm_minutes))
            event.add_component(alarm)
        cal.add_component(event)
    return cal.to_ical()  # RFC 5545: CRLF line endings, folded lines


def _alarm(request: HttpRequest) -> int | None | HttpResponse:
    raw = request.GET.get("alarm")
    if raw in (None, ""):
        return None
    minutes = small_uint(raw)
    if minutes is None or minutes > MAX_ALARM_MINUTES:
        return HttpResponseBadRequest(f"alarm is minutes before the shift, 0 to {MAX_ALARM_MINUTES}.")
    return minutes


def _response(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
def user_feed(request: HttpRequest, token: str) -> HttpResponse:
    user = get_user_model().objects.filter(ical_token=token, is_active=True).first()
    if user is None or not token:
        raise Http404
    alarm = _alarm(request)
    if isinstance(alarm, HttpResponse):
        return alarm
    now = timezone.now()
    data, shifts = selectors.user_shifts_with_roster_get(
        user=user, since=now - PAST, until=now + FUTURE, unclipped=True
    )
    body = calendar_build(
        name=f"On call: {user.display_name}", shifts=shifts, data=data, with_holder=False, alarm_minutes=alarm, now=now
    )
    return _response(body, "oncall.ics")


@require_GET
def team_feed(request: HttpRequest, token: str) -> HttpResponse:
    team = Team.objects.filter(ical_token=token).first()
    if team is None or not token:
        raise Http404
    alarm = _alarm(request)
    if isinstance(alarm, HttpResponse):
        return alarm
    now = timezone.now()
    data, shifts = selectors.teams_shifts_get(team_ids=[team.pk], since=now - PAST, until=now + FUTURE, unclipped=True)
    body = calendar_build(
        name=f"On call: {team.name}", shifts=shifts, data=data, with_holder=True, alarm_minutes=alarm, now=now
    )
    return _response(body, f"{team.slug}.ics")
