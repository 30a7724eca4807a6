"""manage.py import_oncall: bring PagerDuty on-call configuration into Backstop (dry run unless --apply)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.importers.services import SOURCES, export_fetch, export_load, import_run, report_text
from portal.models import User


class Command(BaseCommand):
    help = "Import users, schedules, escalation policies and integrations from PagerDuty. Dry run unless --apply."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--source", choices=sorted(SOURCES), default="pagerduty")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--token", help="A read-only REST API key")
        group.add_argument("--file", help="A JSON export (for air-gapped installs)")
        parser.add_argument("--base-url", help="The vendor API's base URL (e.g. https://api.eu.pagerduty.com)")
        parser.add_argument("--save", help="With --token: also write the export to this file")
        parser.add_argument("--actor", required=True, help="E-mail of the staff member the audit log names")
        parser.add_argument("--apply", action="store_true", help="Create what the dry run shows")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = User.objects.filter(email__iexact=options["actor"], is_staff=True, is_active=True).first()
        if actor is None:
            raise CommandError(f"{options['actor']} is not an active staff member.")
        now = timezone.now()
        try:
            if options["file"]:
                export = export_load(raw=Path(options["file"]).read_bytes())
            else:
                export = export_fetch(
                    source=options["source"], token=options["token"], now=now, base_url=options["base_url"]
                )
                if options["save"]:
                    import json

                    Path(options["save"]).write_text(json.dumps(export, indent=1))
            report = import_run(export=export, actor=actor, now=now, dry_run=not options["apply"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except OSError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(report_text(report))
