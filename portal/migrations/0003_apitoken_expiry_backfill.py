"""Tokens made before every token expired get the default lifetime from now.

Their owners keep 90 days to replace them (the portal shows each token's expiry); after that no
token anywhere lives forever. Revoked tokens are refused anyway: their expiry becomes the revocation.
"""

from datetime import timedelta

from django.db import migrations
from django.db.models import F
from django.utils import timezone


def backfill(apps, schema_editor):
    ApiToken = apps.get_model("portal", "ApiToken")
    legacy = ApiToken.objects.filter(expires_at__isnull=True)
    legacy.filter(revoked_at__isnull=False).update(expires_at=F("revoked_at"))
    legacy.filter(revoked_at__isnull=True).update(expires_at=timezone.now() + timedelta(days=90))


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_insights_rollup")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
