"""Personal API tokens: shown once, stored hashed, expiry required and at most a year, revocable,
created only from a signed-in session."""

import zoneinfo
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal import services
from portal.api_auth import token_hash
from portal.models import ApiToken
from tests.escalations.api_helpers import api_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_create_once_hashed_list_revoke():
    user = UserFactory()
    api_client(user)
    session = session_client(user)
    expires = timezone.now() + timedelta(days=30)
    r = session.post("/api/v1/tokens/", {"name": "ci", "expires_at": expires.isoformat()}, format="json")
    assert r.status_code == 201, r.content
    raw = r.json()["token"]
    assert raw.startswith("bst_")
    token = ApiToken.objects.get(pk=r.json()["id"])
    assert token.key_hash == token_hash(raw) and raw not in (token.key_hash, token.prefix)
    assert token.prefix == raw[:12]

    listing = session.get("/api/v1/tokens/").json()["results"]
    assert {row["name"] for row in listing} == {"tests", "ci"}
    assert all("token" not in row and "key_hash" not in row for row in listing)
    assert set(listing[0]) == {"id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"}

    new = api_client()
    new.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert new.get("/api/v1/tokens/").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None

    assert session.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert new.get("/api/v1/tokens/").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": "no expiry"},
        {"name": "null expiry", "expires_at": None},
        {"name": "past", "expires_at": "2020-01-01T00:00:00Z"},
        {"name": "too long", "expires_at": (timezone.now() + timedelta(days=400)).isoformat()},
        {"expires_at": (timezone.now() + timedelta(days=1)).isoformat()},
    ],
)
def test_expiry_required_and_bounded(body):
    user = UserFactory()
    api_client(user)
    r = session_client(user).post("/api/v1/tokens/", body, format="json")
    assert r.status_code == 400 and r.json()["errors"]
    assert ApiToken.objects.filter(user=user).count() == 1  # only the test client's own token


def test_cannot_see_or_revoke_others_tokens():
    mine, theirs = UserFactory(), UserFactory()
    other = api_client(theirs)
    their_token = ApiToken.objects.get(user=theirs)
    client = api_client(mine)
    assert client.get(f"/api/v1/tokens/{their_token.pk}/").status_code == 404
    assert client.delete(f"/api/v1/tokens/{their_token.pk}/").status_code == 404
    assert other.get("/api/v1/tokens/").status_code == 200


def test_garbage_token_rejected():
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Bearer bst_nope")
    assert client.get("/api/v1/tokens/").status_code == 401
    assert api_client().get("/api/v1/tokens/").status_code == 401


def test_a_token_cannot_mint_tokens():
    user = UserFactory()
    client = api_client(user)
    r = client.post(
        "/api/v1/tokens/",
        {"name": "more", "expires_at": (timezone.now() + timedelta(days=1)).isoformat()},
        format="json",
    )
    assert r.status_code == 403
    assert "signed-in session" in r.json()["message"]
    assert ApiToken.objects.filter(user=user).count() == 1


def test_expired_and_revoked_tokens_are_refused_with_the_reason():
    user = UserFactory()
    client = api_client(user)
    token = ApiToken.objects.get(user=user)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = client.get("/api/v1/tokens/")
    assert r.status_code == 401 and "expired at" in r.json()["message"]
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    r = client.get("/api/v1/tokens/")
    assert r.status_code == 401 and "was revoked" in r.json()["message"]


@pytest.mark.parametrize(
    ("posted", "days"),
    [({}, 90), ({"expires_in_days": "30"}, 30), ({"expires_in_days": "90"}, 90), ({"expires_in_days": "365"}, 365)],
)
def test_portal_tokens_expire_after_the_chosen_lifetime(login, posted, days):
    user = UserFactory()
    before = timezone.now()
    response = login(user).post(reverse("portal:token_create"), {"name": "laptop", **posted})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    assert before + timedelta(days=days) <= token.expires_at <= timezone.now() + timedelta(days=days)
    shown = timezone.localtime(token.expires_at, zoneinfo.ZoneInfo(user.time_zone))
    assert f"It expires {shown:%Y-%m-%d %H:%M}" in response.content.decode()


@pytest.mark.parametrize("lifetime", ["0", "7", "never", "3650"])
def test_portal_offers_no_other_lifetime(login, lifetime):
    user = UserFactory()
    response = login(user).post(reverse("portal:token_create"), {"name": "laptop", "expires_in_days": lifetime})
    assert response.status_code == 400
    assert not ApiToken.objects.filter(user=user).exists()


def test_profile_lists_each_tokens_expiry(login):
    user = UserFactory()
    live, _ = services.api_token_create(user=user, name="live")
    dead, _ = services.api_token_create(user=user, name="dead")
    ApiToken.objects.filter(pk=dead.pk).update(expires_at=timezone.now() - timedelta(days=1))
    dead.refresh_from_db()
    body = login(user).get(reverse("portal:profile")).content.decode()
    for token in (live, dead):
        shown = timezone.localtime(token.expires_at, zoneinfo.ZoneInfo(user.time_zone))
        assert f'data-label="Expires">{shown:%Y-%m-%d %H:%M}' in body
    assert "Expired" in body


def test_service_refuses_tokens_without_an_end():
    user = UserFactory()
    now = timezone.now()
    token, _ = services.api_token_create(user=user, name="default", now=now)
    assert token.expires_at == now + timedelta(days=90)
    with pytest.raises(ValidationError):
        services.api_token_create(user=user, name="forever", expires_at=now + timedelta(days=3650), now=now)
