"""Pages over the roster (rotations.selectors/services)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rotations.models import Exclusion, Override
from tests.factories import ExclusionFactory, RotationEraFactory, RotationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rota(team, role_users):
    rotation = RotationFactory(team=team, name="Main", positions=["primary"])
    RotationEraFactory(
        rotation=rotation, shift_unit="days", participants=[role_users["engineer"], role_users["manager"]]
    )
    return rotation


def test_now_shows_who_is_on_call_and_cover_reason(login, team, role_users, rota):
    now = timezone.now()
    for user in (role_users["engineer"], role_users["manager"]):
        body = login(user).get(reverse("portal:now")).content.decode()
        assert "Main" in body and "until" in body
    # Whoever holds primary now goes on vacation: the other covers, and the page says why.
    from rotations.selectors import teams_oncall_rows_get

    holder = teams_oncall_rows_get(team_ids=[team.pk], at=now)[team.pk][0].user
    ExclusionFactory(user=holder, start=now - timedelta(hours=1), end=now + timedelta(days=3), kind="vacation")
    body = login(role_users["viewer"]).get(reverse("portal:now")).content.decode()
    assert f"covering for {holder.display_name} (vacation)" in body


def test_schedule_lists_my_shifts_and_saves_time_off(login, role_users, rota):
    client = login(role_users["engineer"])
    body = client.get(reverse("portal:schedule")).content.decode()
    assert "primary" in body and "/ical/user/" in body
    start = timezone.localtime(timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    end = timezone.localtime(timezone.now() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("portal:exclusion_create"), {"kind": "vacation", "start": start, "end": end})
    assert response.status_code == 302
    assert Exclusion.objects.filter(user=role_users["engineer"], created_by=role_users["engineer"]).exists()
    response = client.post(reverse("portal:exclusion_create"), {"kind": "vacation", "start": end, "end": start})
    assert response.status_code == 400 and "The end must be after the start." in response.content.decode()


def test_take_the_pager_override(login, role_users, rota):
    client = login(role_users["engineer"])
    start = timezone.localtime(timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    end = timezone.localtime(timezone.now() + timedelta(days=1, hours=4)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("portal:override_create"),
        {"rotation": rota.pk, "position": "primary", "start": start, "end": end, "reason": "swap"},
    )
    assert response.status_code == 302
    override = Override.objects.get(rotation=rota)
    assert override.user == role_users["engineer"] and override.reason == "swap"
    # A viewer may not hand the pager to someone else.
    response = login(role_users["viewer"]).post(
        reverse("portal:override_create"),
        {"rotation": rota.pk, "position": "primary", "start": start, "end": end, "taker": role_users["manager"].pk},
    )
    assert response.status_code in (400, 403)


def test_calendar_marks_gaps(login, team, role_users):
    rotation = RotationFactory(team=team, positions=["primary", "secondary"])
    RotationEraFactory(rotation=rotation, participants=[role_users["engineer"]])
    body = login(role_users["engineer"]).get(reverse("portal:calendar", args=[team.slug])).content.decode()
    assert "cal-bar gap" in body and "cal-bar rotation" in body
