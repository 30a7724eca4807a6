"""Regressions for 500s found by fuzzing (schemathesis) and by reading the input parsers."""

import pytest
from django.urls import reverse

from tests.escalations.api_helpers import api_client
from tests.factories import IncidentFactory, MembershipFactory, RotationFactory

pytestmark = pytest.mark.django_db

# Valid ISO 8601 (offsets up to ±23:59), but PostgreSQL only takes offsets up to ±15:59: was a DataError.
FAR_OFFSET = "0762-01-05T07:06:02.7-23:29"
# No UTC instant at all: 0001-01-01T00:00+01:00 is before datetime.min.
BEFORE_MIN = "0001-01-01T00:00:00+01:00"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/incidents/", "created_before"),
        ("/api/v1/incidents/", "created_after"),
        ("/api/v1/maintenance-windows/", "active_at"),
        ("/api/v1/exclusions/", "ends_after"),
        ("/api/v1/overrides/", "starts_before"),
    ],
)
def test_datetime_filters_take_any_offset_and_refuse_impossible_instants(staff, path, param):
    client = api_client(staff)
    response = client.get(path, {param: FAR_OFFSET})
    assert response.status_code == 200, response.content  # same instant as 0762-01-05T06:35:32.7Z
    response = client.get(path, {param: BEFORE_MIN})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == param


def test_far_offset_filter_means_the_same_instant(staff, team):
    IncidentFactory(team=team)
    client = api_client(staff)
    assert client.get("/api/v1/incidents/", {"created_after": "2000-01-01T00:00:00-23:59"}).json()["count"] == 1
    assert client.get("/api/v1/incidents/", {"created_after": "9999-01-01T00:00:00+23:59"}).json()["count"] == 0


@pytest.mark.parametrize("path", ["/api/v1/incidents/0.3/", "/api/v1/overrides/-1e5/", "/api/v1/nothing-here/"])
def test_unmatched_api_urls_answer_json_404(staff, path):
    response = api_client(staff).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["message"]


def test_unmatched_portal_urls_stay_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("team_param", ["²", "1" * 5000, "٣"], ids=["superscript", "5000-digits", "arabic-indic"])
def test_oncall_team_lookup_with_odd_digits_is_a_404_not_a_500(staff, team_param):
    response = api_client(staff).get("/api/v1/oncall/", {"team": team_param})
    assert response.status_code == 404 and response.json()["message"].endswith("No such team.")


@pytest.mark.parametrize("alarm", ["²", "9" * 5000, "-5"], ids=["superscript", "5000-digits", "negative"])
def test_ical_alarm_with_odd_digits_is_a_400(client, staff, alarm):
    response = client.get(f"/ical/user/{staff.ical_token}.ics", {"alarm": alarm})
    assert response.status_code == 400


def test_portal_reassign_ignores_odd_digits(team, role_users, login):
    from escalations.models import Incident

    incident = IncidentFactory(team=team)
    client = login(role_users["manager"])
    response = client.post(reverse("portal:incident_reassign", args=[incident.pk]), {"users": ["²", "9" * 5000]})
    assert response.status_code == 302
    assert not Incident.objects.get(pk=incident.pk).assignees.exists()


def test_rotation_form_ignores_odd_order_keys_and_values(team, role_users, login):
    client = login(role_users["manager"])
    data = {
        "name": "Main",
        "time_zone": "Europe/Berlin",
        "positions": "primary",
        "start_date": "2026-03-02",
        "handoff_time": "09:00",
        "shift_unit": "weeks",
        "shift_length": "1",
        "order_abc": "1",
        f"order_{role_users['engineer'].pk}": "²",
    }
    response = client.post(reverse("portal:rotation_create", args=[team.slug]), data)
    assert response.status_code == 400
    assert "Number at least one person" in response.content.decode()
    assert not RotationFactory._meta.model.objects.filter(team=team).exists()


def test_rotation_form_takes_plain_order_numbers(team, role_users, login):
    MembershipFactory(team=team, role="engineer")
    client = login(role_users["manager"])
    data = {
        "name": "Main",
        "time_zone": "Europe/Berlin",
        "positions": "primary",
        "start_date": "2026-03-02",
        "handoff_time": "09:00",
        "shift_unit": "weeks",
        "shift_length": "1",
        f"order_{role_users['engineer'].pk}": " 1 ",
    }
    response = client.post(reverse("portal:rotation_create", args=[team.slug]), data)
    assert response.status_code == 302
