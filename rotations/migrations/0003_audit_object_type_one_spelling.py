"""Audit rows name their object by the model's lower-case label ("escalations.escalationpolicy"), the
spelling of rotations.audit.audit_record. The policy services wrote "escalationpolicy" and the REST API
"escalations.EscalationPolicy" (also Integration, MaintenanceWindow, Heartbeat); rewrite those rows so
one filter finds every change to an object."""

from django.db import migrations
from django.db.models.functions import Lower

OLD_BARE = {"escalationpolicy": "escalations.escalationpolicy"}


def object_types_unify(apps, schema_editor) -> None:
    AuditEntry = apps.get_model("rotations", "AuditEntry")
    for old, new in OLD_BARE.items():
        AuditEntry.objects.filter(object_type=old).update(object_type=new)
    AuditEntry.objects.filter(object_type__contains=".", object_type__regex=r"[A-Z]").update(
        object_type=Lower("object_type")
    )


class Migration(migrations.Migration):
    dependencies = [("rotations", "0002_rotation_era_cycle_offset")]

    # Not reversible into the old spellings (they were the bug), but harmless to unapply.
    operations = [migrations.RunPython(object_types_unify, migrations.RunPython.noop)]
