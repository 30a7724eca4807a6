"""Verification codes cost an SMS or a call each: caps on methods, on sends and on destinations."""

from datetime import timedelta

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from escalations.models import OutboxMessage
from portal import services
from portal.models import ContactMethod
from tests.factories import ContactMethodFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _console_channel(settings):
    settings.TWILIO_ACCOUNT_SID = ""  # codes land in the outbox, where they can be counted


def _example(region: str) -> str:
    return phonenumbers.format_number(phonenumbers.example_number(region), phonenumbers.PhoneNumberFormat.E164)


def _send_every_minute(method, t0, times):
    for i in range(times):
        services.contact_method_verification_send(method=method, now=t0 + timedelta(minutes=i))


def test_methods_per_person_are_capped(settings, login):
    settings.BACKSTOP_MAX_CONTACT_METHODS = 3
    user = UserFactory()
    for i in range(3):
        services.contact_method_add(user=user, kind="email", value=f"a{i}@example.com")
    with pytest.raises(ValidationError, match="the most one person may have"):
        services.contact_method_add(user=user, kind="sms", value="+4915123456789")
    response = login(user).post(reverse("portal:method_add"), {"kind": "email", "value": "z@example.com"})
    assert response.status_code == 400 and "the most one person may have" in response.content.decode()
    assert ContactMethod.objects.filter(user=user).count() == 3


def test_sends_per_destination_per_day_are_capped_across_people(settings, django_capture_on_commit_callbacks):
    settings.BACKSTOP_VERIFICATION_SENDS_PER_DESTINATION_PER_DAY = 3
    t0 = timezone.now().replace(hour=1)
    victim = "+4915123456789"
    first, second = (ContactMethodFactory(kind="sms", value=victim, verified_at=None) for _ in range(2))
    with django_capture_on_commit_callbacks(execute=True):
        _send_every_minute(first, t0, 2)
        services.contact_method_verification_send(method=second, now=t0)
        with pytest.raises(ValidationError, match="the most we send to one destination"):
            services.contact_method_verification_send(method=second, now=t0 + timedelta(minutes=5))
    assert OutboxMessage.objects.filter(to=victim).count() == 3
    # A new day, new codes.
    services.contact_method_verification_send(method=second, now=t0 + timedelta(days=1))


def test_sends_per_person_per_day_are_capped(settings):
    settings.BACKSTOP_VERIFICATION_SENDS_PER_USER_PER_DAY = 4
    t0 = timezone.now().replace(hour=1)
    user = UserFactory()
    methods = [
        ContactMethodFactory(user=user, kind="sms", value=f"+49151234567{i}0", verified_at=None) for i in range(3)
    ]
    _send_every_minute(methods[0], t0, 2)
    _send_every_minute(methods[1], t0, 2)
    with pytest.raises(ValidationError, match="the most we send for one person"):
        services.contact_method_verification_send(method=methods[2], now=t0)


def test_resend_button_shows_the_cap_as_a_message(settings, login):
    settings.BACKSTOP_VERIFICATION_SENDS_PER_DESTINATION_PER_DAY = 1
    user = UserFactory()
    method = ContactMethodFactory(user=user, kind="email", value="q@example.com", verified_at=None)
    services.contact_method_verification_send(method=method, now=timezone.now() - timedelta(minutes=5))
    client = login(user)
    response = client.post(reverse("portal:method_send", args=[method.pk]), follow=True)
    assert response.status_code == 200 and "the most we send to one destination" in response.content.decode()


@pytest.mark.parametrize("allowed", [["DE", "AT"], ["+49"], ["49", "us"]])
def test_only_allowed_countries_can_be_added(settings, login, allowed):
    settings.BACKSTOP_PHONE_COUNTRIES = allowed
    user = UserFactory()
    services.contact_method_add(user=user, kind="sms", value="+49 151 2345 6789")
    with pytest.raises(ValidationError, match="cannot be used here"):
        services.contact_method_add(user=user, kind="voice", value=_example("CU"))
    with pytest.raises(ValidationError, match="cannot be used here"):
        services.contact_method_add(user=user, kind="voice", value="+44 7911 123456")
    response = login(user).post(reverse("portal:method_add"), {"kind": "sms", "value": "+44 7911 123456"})
    assert response.status_code == 400 and "cannot be used here" in response.content.decode()


def test_a_number_outside_a_shrunk_allow_list_gets_no_code(settings):
    method = ContactMethodFactory(kind="sms", value="+447911123456", verified_at=None)
    settings.BACKSTOP_PHONE_COUNTRIES = ["DE"]
    with pytest.raises(ValidationError, match="cannot be used here"):
        services.contact_method_verification_send(method=method)
    assert not OutboxMessage.objects.filter(to=method.value).exists()


def test_empty_allow_list_allows_every_country(settings):
    settings.BACKSTOP_PHONE_COUNTRIES = []
    services.contact_method_add(user=UserFactory(), kind="sms", value="+44 7911 123456")
