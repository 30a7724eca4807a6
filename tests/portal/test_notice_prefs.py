"""Shift notice settings on the profile page (rotations.services.notification_preferences)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.forms.profile import leads_parse
from rotations.models import NotificationPreference
from tests.factories import ContactMethodFactory, UserFactory

pytestmark = pytest.mark.django_db

ALL_EMAIL = {"reminder_kinds": ["email"], "handover_kinds": ["email"], "roster_change_kinds": ["email"]}


def test_leads_parse_reads_hours_days_and_minutes():
    assert leads_parse("24h, 1 h, 15m, 2d, 5") == [1440, 60, 15, 2880, 5]
    assert leads_parse("") == []


def test_profile_shows_todays_defaults_and_saves_new_leads_and_channels(login):
    user = UserFactory()
    ContactMethodFactory(user=user, kind="sms", value="+15550100123", verified_at=timezone.now())
    client = login(user)
    body = client.get(reverse("portal:profile")).content.decode()
    assert 'value="24h, 15m"' in body and "Shift reminders and notices" in body
    response = client.post(
        reverse("portal:notice_prefs"),
        {**ALL_EMAIL, "reminder_leads": "15m, 24h, 1h", "reminder_kinds": ["sms", "email"], "handover_kinds": ["sms"]},
    )
    assert response.status_code == 302
    pref = NotificationPreference.objects.get(user=user)
    assert pref.reminder_lead_minutes == [1440, 60, 15]
    assert (pref.reminder_kinds, pref.handover_kinds, pref.roster_change_kinds) == (
        ["sms", "email"],
        ["sms"],
        ["email"],
    )
    assert 'value="24h, 1h, 15m"' in client.get(reverse("portal:profile")).content.decode()


def test_no_leads_means_no_reminders(login):
    user = UserFactory()
    assert login(user).post(reverse("portal:notice_prefs"), {**ALL_EMAIL, "reminder_leads": ""}).status_code == 302
    assert NotificationPreference.objects.get(user=user).reminder_lead_minutes == []


@pytest.mark.parametrize(
    "change, error",
    [
        ({"reminder_leads": "soon"}, "write each reminder as minutes, hours or days"),
        ({"reminder_leads": "8d"}, "Each reminder is 1 minute to 7 days before the shift"),
        ({"reminder_leads": "0m"}, "Each reminder is 1 minute to 7 days before the shift"),
        ({"reminder_leads": "1m, 2m, 3m, 4m, 5m, 6m, 7m"}, "At most 6 reminders per shift."),
        ({"handover_kinds": []}, "This field is required."),
        ({"roster_change_kinds": ["pigeon"]}, "Select a valid choice."),
        ({"reminder_kinds": ["sms"]}, "Add and verify an SMS number under Contact methods first."),
    ],
)
def test_bad_notice_settings_are_refused_and_nothing_is_written(login, change, error):
    user = UserFactory()
    # An unverified number does not count for SMS notices.
    ContactMethodFactory(user=user, kind="sms", value="+15550100124", verified_at=None)
    response = login(user).post(reverse("portal:notice_prefs"), {**ALL_EMAIL, "reminder_leads": "1h", **change})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not NotificationPreference.objects.filter(user=user).exists()


def test_schedule_shows_the_feed_with_a_calendar_reminder(login):
    user = UserFactory()
    client = login(user)
    body = client.get(reverse("portal:schedule")).content.decode()
    assert f"/ical/user/{user.ical_token}.ics?alarm=15" in body
    body = client.get(reverse("portal:schedule") + "?alarm=60").content.decode()
    assert f"/ical/user/{user.ical_token}.ics?alarm=60" in body
    # Nonsense falls back to the default rather than producing a link the feed would refuse.
    body = client.get(reverse("portal:schedule") + "?alarm=99999999").content.decode()
    assert f"/ical/user/{user.ical_token}.ics?alarm=15" in body
