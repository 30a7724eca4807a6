"""Personal API tokens: shown once, stored hashed, expiry required and at most a year, revocable,
created only from a signed-in session."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

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
