"""Follow-the-sun restrictions in the portal's rotation form, and the unsaved preview of the shifts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.forms.manage import windows_format, windows_parse
from rotations.models import AuditEntry, Rotation, RotationEra
from rotations.services import rotations as services_rotations

pytestmark = pytest.mark.django_db


def _form(role_users, **extra) -> dict:
    start = (timezone.now() + timedelta(days=1)).date()
    data = {
        "name": "Europe daytime",
        "time_zone": "Europe/Berlin",
        "positions": "primary",
        "start_date": start.isoformat(),
        "handoff_time": "09:00",
        "shift_unit": "weeks",
        "shift_length": "1",
        f"order_{role_users['engineer'].pk}": "1",
        f"order_{role_users['manager'].pk}": "2",
    }
    data.update(extra)
    return data


def test_windows_text_round_trips():
    windows = windows_parse("Mon-Fri 09:00-17:00\nsat, sun 10:00-14:00\ndaily 22:00-06:00\nWed 9:30-24:00")
    assert {"weekday": 0, "start": "09:00", "end": "17:00"} in windows
    assert {"weekday": 6, "start": "10:00", "end": "14:00"} in windows
    assert {"weekday": None, "start": "22:00", "end": "06:00"} in windows
    assert {"weekday": 2, "start": "09:30", "end": "00:00"} in windows
    assert len(windows) == 5 + 2 + 1 + 1
    assert windows_parse(windows_format(windows)) == windows
    assert "Mon-Fri 09:00-17:00" in windows_format(windows)


def test_create_saves_restrictions(login, team, role_users):
    response = login(role_users["manager"]).post(
        reverse("portal:rotation_create", args=[team.slug]), _form(role_users, restrictions="Mon-Fri 09:00-17:00")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    era = RotationEra.objects.get(rotation__team=team)
    assert sorted(w["weekday"] for w in era.restrictions) == [0, 1, 2, 3, 4]
    assert {(w["start"], w["end"]) for w in era.restrictions} == {("09:00", "17:00")}


@pytest.mark.parametrize(
    ("text", "says"),
    [("Someday 09:00-17:00", "Line 1"), ("Mon 09:00-09:00", "must differ"), ("Mon 25:00-26:00", "times like")],
)
def test_bad_restrictions_are_refused_and_nothing_is_written(login, team, role_users, text, says):
    response = login(role_users["manager"]).post(
        reverse("portal:rotation_create", args=[team.slug]), _form(role_users, restrictions=text)
    )
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not Rotation.objects.filter(team=team).exists()
    assert not AuditEntry.objects.filter(team=team).exists()


def test_preview_shows_gaps_outside_the_windows_and_writes_nothing(login, team, role_users):
    client = login(role_users["manager"])
    url = reverse("portal:rotation_create_preview", args=[team.slug])
    response = client.post(url, _form(role_users, restrictions="Mon-Fri 09:00-17:00"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content.decode()[:2000]
    body = response.content.decode()
    assert 'id="rotation-preview"' in body and "<html" not in body
    assert "Gaps: nobody on call" in body
    assert role_users["engineer"].display_name in body
    assert not Rotation.objects.filter(team=team).exists()
    assert not RotationEra.objects.exists()
    # Around the clock: the same definition has no gap once it has started.
    start = timezone.now().date() - timedelta(days=1)
    response = client.post(url, _form(role_users, start_date=start.isoformat()), HTTP_HX_REQUEST="true")
    assert "No gaps" in response.content.decode()


def test_preview_without_htmx_renders_the_form_page_with_the_preview(login, team, role_users):
    response = login(role_users["manager"]).post(
        reverse("portal:rotation_create_preview", args=[team.slug]), _form(role_users, restrictions="daily 08:00-20:00")
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" in body and "Gaps: nobody on call" in body and "daily 08:00-20:00" in body


def test_preview_with_bad_input_says_why(login, team, role_users):
    response = login(role_users["manager"]).post(
        reverse("portal:rotation_create_preview", args=[team.slug]),
        _form(role_users, restrictions="weekdays nine to five", shift_length="0"),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Cannot preview yet" in body and "Line 1" in body
    assert not Rotation.objects.exists()


def test_edit_preview_and_save_restrictions(login, team, role_users):
    rotation = services_rotations.rotation_create(
        team=team,
        name="Follow",
        time_zone="Asia/Tokyo",
        positions=["primary"],
        start_date=timezone.now().date() - timedelta(days=3),
        handoff_time=timezone.datetime.min.time(),
        shift_unit="days",
        shift_length=1,
        participants=[role_users["engineer"]],
        actor=role_users["staff"],
    )
    client = login(role_users["manager"])
    page = client.get(reverse("portal:rotation_edit", args=[rotation.pk]))
    assert reverse("portal:rotation_edit_preview", args=[rotation.pk]) in page.content.decode()
    data = _form(role_users, name="Follow", restrictions="daily 09:00-18:00", shift_unit="days")
    data.pop(f"order_{role_users['manager'].pk}")
    data["start_date"] = (timezone.now().date() - timedelta(days=3)).isoformat()
    data["handoff_time"] = "00:00"
    response = client.post(reverse("portal:rotation_edit_preview", args=[rotation.pk]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Gaps: nobody on call" in response.content.decode()
    assert rotation.eras.count() == 1
    assert rotation.eras.get().restrictions == []
    response = client.post(reverse("portal:rotation_edit", args=[rotation.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    latest = rotation.eras.order_by("-effective_from").first()
    assert latest.restrictions == [{"weekday": None, "start": "09:00", "end": "18:00"}]
    page = client.get(reverse("portal:rotation_edit", args=[rotation.pk]))
    assert "daily 09:00-18:00" in page.content.decode()
