from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from portal.api_auth import token_generate, token_hash
from portal.models import ApiToken


def api_client(user=None) -> APIClient:
    """A client authenticated the way scripts are: a real personal API token in the header."""
    client = APIClient()
    if user is not None:
        raw = token_generate()
        ApiToken.objects.create(
            user=user,
            name="tests",
            prefix=raw[:12],
            key_hash=token_hash(raw),
            expires_at=timezone.now() + timedelta(days=1),
        )
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
