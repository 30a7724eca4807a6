"""Tokens from before every token expired keep working for the default lifetime, then expire."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("portal", "0002_insights_rollup")]
AFTER = [("portal", "0004_apitoken_expires_at_required")]


@pytest.mark.django_db(transaction=True)
def test_legacy_tokens_get_the_default_lifetime_from_the_migration():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("portal", "User").objects.create(email="legacy@example.com", password="!")
    ApiToken = old.get_model("portal", "ApiToken")
    revoked_at = timezone.now() - timedelta(days=3)
    live = ApiToken.objects.create(user=user, name="cli", prefix="bst_aaaaaaaa", key_hash="a" * 64)
    dead = ApiToken.objects.create(
        user=user, name="old", prefix="bst_bbbbbbbb", key_hash="b" * 64, revoked_at=revoked_at
    )

    before = timezone.now()
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("portal", "ApiToken")
    live_expiry = new.objects.get(pk=live.pk).expires_at
    assert before + timedelta(days=90) <= live_expiry <= timezone.now() + timedelta(days=90)
    assert new.objects.get(pk=dead.pk).expires_at == revoked_at

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
