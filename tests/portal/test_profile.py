from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from portal import services
from portal.api_auth import token_hash
from portal.models import ApiToken, ContactMethod, NotificationRule
from tests.factories import ContactMethodFactory, UserFactory

pytestmark = pytest.mark.django_db


def _code_from_outbox() -> str:
    import re

    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


def test_anonymous_profile_redirects(client):
    assert client.get(reverse("portal:profile")).status_code == 302


def test_profile_update_time_zone_and_name(login):
    user = UserFactory()
    client = login(user)
    response = client.post(reverse("portal:profile"), {"full_name": "Ann Example", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.full_name, user.time_zone) == ("Ann Example", "Asia/Tokyo")
    response = client.post(reverse("portal:profile"), {"full_name": "x", "time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_add_phone_normalises_to_e164_and_rejects_garbage(login):
    user = UserFactory()
    client = login(user)
    response = client.post(reverse("portal:method_add"), {"kind": "sms", "value": "+49 151 2345 6789"})
    assert response.status_code == 302
    assert ContactMethod.objects.get(user=user).value == "+4915123456789"
    response = client.post(reverse("portal:method_add"), {"kind": "sms", "value": "0151 2345"})
    assert response.status_code == 400
    assert "international format" in response.content.decode()
    response = client.post(reverse("portal:method_add"), {"kind": "voice", "value": "+1 555 0"})
    assert response.status_code == 400


def test_email_verification_full_flow(login, django_capture_on_commit_callbacks):
    user = UserFactory()
    client = login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("portal:method_add"), {"kind": "email", "value": "Ann@Example.com"})
    method = ContactMethod.objects.get(user=user)
    assert method.value == "ann@example.com" and method.verified_at is None
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ann@example.com"]
    code = _code_from_outbox()
    assert code not in method.verification_code_hash
    wrong = "000000" if code != "000000" else "111111"
    response = client.post(reverse("portal:method_verify", args=[method.pk]), {"code": wrong})
    assert response.status_code == 400 and "4 attempt(s) left" in response.content.decode()
    response = client.post(reverse("portal:method_verify", args=[method.pk]), {"code": code})
    assert response.status_code == 302
    method.refresh_from_db()
    assert method.verified_at is not None and method.verification_code_hash == ""


def test_code_expires_after_ten_minutes(django_capture_on_commit_callbacks):
    method = ContactMethodFactory(kind="email", value="a@example.com", verified_at=None)
    t0 = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_method_verification_send(method=method, now=t0)
    code = _code_from_outbox()
    with pytest.raises(ValidationError, match="expired"):
        services.contact_method_verify(method=method, code=code, now=t0 + timedelta(minutes=10, seconds=1))
    services.contact_method_verify(method=method, code=code, now=t0 + timedelta(minutes=9))
    method.refresh_from_db()
    assert method.is_verified


def test_five_wrong_attempts_lock_the_code(django_capture_on_commit_callbacks):
    method = ContactMethodFactory(kind="email", value="b@example.com", verified_at=None)
    t0 = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_method_verification_send(method=method, now=t0)
    code = _code_from_outbox()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(ValidationError):
            services.contact_method_verify(method=method, code=wrong, now=t0)
    with pytest.raises(ValidationError, match="Too many wrong codes"):
        services.contact_method_verify(method=method, code=code, now=t0)
    method.refresh_from_db()
    assert method.verified_at is None
    # A new code resets the attempts (after the resend pause).
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_method_verification_send(method=method, now=t0 + timedelta(minutes=1))
    services.contact_method_verify(method=method, code=_code_from_outbox(), now=t0 + timedelta(minutes=1))
    method.refresh_from_db()
    assert method.is_verified


def test_resend_is_throttled(django_capture_on_commit_callbacks):
    method = ContactMethodFactory(kind="email", value="c@example.com", verified_at=None)
    t0 = timezone.now()
    services.contact_method_verification_send(method=method, now=t0)
    with pytest.raises(ValidationError, match="Wait"):
        services.contact_method_verification_send(method=method, now=t0 + timedelta(seconds=5))


def test_sms_code_goes_to_the_console_outbox_without_twilio(settings, django_capture_on_commit_callbacks):
    import re

    from escalations.models import OutboxMessage

    settings.TWILIO_ACCOUNT_SID = ""  # the console channel: nothing leaves the machine
    method = ContactMethodFactory(kind="sms", value="+4915123456789", verified_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_method_verification_send(method=method)
    message = OutboxMessage.objects.get(to="+4915123456789")
    code = re.search(r"\b(\d{6})\b", message.body).group(1)
    services.contact_method_verify(method=method, code=code)
    method.refresh_from_db()
    assert method.is_verified


def test_cannot_verify_someone_elses_method(login):
    method = ContactMethodFactory(verified_at=None)
    response = login(UserFactory()).post(reverse("portal:method_verify", args=[method.pk]), {"code": "123456"})
    assert response.status_code == 404


def test_notification_rules_add_and_reorder(login):
    user = UserFactory()
    sms = ContactMethodFactory(user=user)
    voice = ContactMethodFactory(user=user, kind="voice")
    client = login(user)
    client.post(reverse("portal:rule_add"), {"contact_method": sms.pk, "delay_minutes": 0, "urgency": "any"})
    client.post(reverse("portal:rule_add"), {"contact_method": voice.pk, "delay_minutes": 2, "urgency": "high"})
    rules = list(NotificationRule.objects.filter(user=user).order_by("order"))
    assert [r.contact_method_id for r in rules] == [sms.pk, voice.pk]
    assert rules[1].delay == timedelta(minutes=2)
    client.post(reverse("portal:rule_move", args=[rules[1].pk]), {"direction": "up"})
    assert list(
        NotificationRule.objects.filter(user=user).order_by("order").values_list("contact_method_id", flat=True)
    ) == [voice.pk, sms.pk]
    other = ContactMethodFactory()
    response = client.post(
        reverse("portal:rule_add"), {"contact_method": other.pk, "delay_minutes": 0, "urgency": "any"}
    )
    assert response.status_code == 400


def test_api_token_shown_once_and_revocable(login):
    user = UserFactory()
    client = login(user)
    response = client.post(reverse("portal:token_create"), {"name": "laptop"})
    body = response.content.decode()
    token = ApiToken.objects.get(user=user)
    import re

    raw = re.search(r'id="new-token">(bst_[^<]+)<', body).group(1)
    assert token.key_hash == token_hash(raw)
    assert raw not in client.get(reverse("portal:profile")).content.decode()
    client.post(reverse("portal:token_revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert login(UserFactory()).post(reverse("portal:token_revoke", args=[token.pk])).status_code == 404


def test_profile_query_count_is_constant(login, django_assert_max_num_queries):
    user = UserFactory()
    for n in range(10):
        m = ContactMethodFactory(user=user)
        NotificationRule.objects.create(user=user, contact_method=m, delay=timedelta(minutes=n), order=n)
        services.api_token_create(user=user, name=f"t{n}")
    client = login(user)
    client.get(reverse("portal:profile"))
    with django_assert_max_num_queries(8):
        assert client.get(reverse("portal:profile")).status_code == 200
