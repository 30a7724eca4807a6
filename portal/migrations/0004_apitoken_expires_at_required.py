from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portal", "0003_apitoken_expiry_backfill")]

    operations = [
        migrations.AlterField(model_name="apitoken", name="expires_at", field=models.DateTimeField()),
    ]
