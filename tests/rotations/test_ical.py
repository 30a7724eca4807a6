"""iCal feeds parsed back with icalendar."""

from datetime import timedelta

import pytest
import time_machine
from icalendar import Calendar

from rotations.services import teams as services_teams
from tests.factories import ExclusionFactory, OverrideFactory
from tests.rotations.conftest import MON

pytestmark = pytest.mark.django_db


def _events(client, url):
    res = client.get(url)
    assert res.status_code == 200
    assert res["Content-Type"] == "text/calendar; charset=utf-8"
    body = res.content
    assert b"\r\n" in body and body.replace(b"\r\n", b"").count(b"\n") == 0  # CRLF only
    cal = Calendar.from_ical(body)
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}, body


def test_user_feed_uids_stable_and_cover_summary(client, roster):
    rotation, people = roster
    maria, jonas, ana, tom = people
    ExclusionFactory(user=jonas, start=MON + timedelta(days=8), end=MON + timedelta(days=9))
    url = f"/ical/user/{tom.ical_token}.ics"  # Tom, next in line, covers Jonas on day 8
    with time_machine.travel(MON + timedelta(days=2, hours=5), tick=False):
        first, _ = _events(client, url)
        again, _ = _events(client, url)
    assert set(first) == set(again)
    assert all(first[uid]["DTSTART"].dt == again[uid]["DTSTART"].dt for uid in first)
    summaries = {str(e["SUMMARY"]) for e in first.values()}
    assert "Payments primary (covering Jonas Berg)" in summaries
    assert "Payments secondary" in summaries
    cover = next(e for e in first.values() if "covering" in str(e["SUMMARY"]))
    assert cover["DTSTART"].dt == MON + timedelta(days=8) and cover["DTEND"].dt == MON + timedelta(days=9)
    # Feed window moves by a day (and a bit): events present in both keep UID and times.
    with time_machine.travel(MON + timedelta(days=3, hours=7), tick=False):
        later, _ = _events(client, url)
    common = set(first) & set(later)
    assert len(common) >= 3
    for uid in common:
        assert (first[uid]["DTSTART"].dt, first[uid]["DTEND"].dt) == (later[uid]["DTSTART"].dt, later[uid]["DTEND"].dt)
    uid = next(iter(first))
    assert uid.endswith("@backstop") and uid.startswith(f"{rotation.pk}-{rotation.eras.get().pk}-")


def test_team_feed_with_alarm_and_override(client, roster):
    rotation, people = roster
    maria, jonas, ana, tom = people
    OverrideFactory(
        rotation=rotation, user=tom, position="primary", start=MON + timedelta(hours=2), end=MON + timedelta(hours=4)
    )
    with time_machine.travel(MON + timedelta(hours=1), tick=False):
        events, body = _events(client, f"/ical/team/{rotation.team.ical_token}.ics?alarm=15")
    summaries = sorted(str(e["SUMMARY"]) for e in events.values() if e["DTSTART"].dt < MON + timedelta(days=1))
    assert summaries == [
        "Payments primary: Maria Lopez",
        "Payments primary: Maria Lopez",
        "Payments primary: Tom Wu (covering Maria Lopez)",
        "Payments secondary: Jonas Berg",
    ]
    alarms = [c for e in events.values() for c in e.subcomponents if c.name == "VALARM"]
    assert len(alarms) == len(events) and alarms[0]["TRIGGER"].dt == timedelta(minutes=-15)
    assert b"BEGIN:VALARM" in body
    with time_machine.travel(MON + timedelta(hours=1), tick=False):
        plain, body = _events(client, f"/ical/team/{rotation.team.ical_token}.ics")
    assert b"VALARM" not in body and set(plain) == set(events)


def test_unknown_or_rotated_token_is_404(client, roster, staff):
    rotation, people = roster
    assert client.get("/ical/user/nope.ics").status_code == 404
    assert client.get("/ical/team/nope.ics").status_code == 404
    old = rotation.team.ical_token
    services_teams.team_ical_token_rotate(team=rotation.team, actor=staff)
    assert client.get(f"/ical/team/{old}.ics").status_code == 404
    old = people[0].ical_token
    new = services_teams.user_ical_token_rotate(user=people[0], actor=people[0])
    assert client.get(f"/ical/user/{old}.ics").status_code == 404
    assert client.get(f"/ical/user/{new}.ics").status_code == 200


def test_bad_alarm_is_400(client, roster):
    _, people = roster
    assert client.get(f"/ical/user/{people[0].ical_token}.ics?alarm=soon").status_code == 400
