"""Import an on-call configuration: read the source, map it, dry-run or apply, compare with the source."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from portal.importers.apply import ApplyReport, plan_apply
from portal.importers.compare import ScheduleComparison, plan_compare
from portal.importers.plan import Plan, Unmapped
from portal.importers.sources import grafana_oncall, opsgenie, pagerduty

SOURCES = {"pagerduty": pagerduty, "grafana_oncall": grafana_oncall, "opsgenie": opsgenie}
# The comparison covers the next 8 weeks: long enough for a weekly rotation of several people, a DST change
# and the end of a layer to show.
COMPARE_SPAN = timedelta(weeks=8)


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    applied: ApplyReport
    unmapped: list[Unmapped]
    comparisons: list[ScheduleComparison] = field(default_factory=list)

    @property
    def disagreeing_minutes(self) -> int:
        return sum(c.disagreeing_minutes for c in self.comparisons)


def export_fetch(*, source: str, token: str, now: datetime, base_url: str | None = None, verify: Any = True) -> dict:
    """Read the vendor's REST API (network: call outside any transaction)."""
    module = _module(source)
    since = now.astimezone(UTC).replace(second=0, microsecond=0)
    # Optional settings (absent = the vendor's public API, the system's CA store): another region's API, or a
    # private CA in front of it.
    ca_bundle = getattr(settings, "IMPORTER_CA_BUNDLE", "")
    if verify is True and ca_bundle:
        verify = ssl.create_default_context(cafile=ca_bundle)
    kwargs: dict[str, Any] = {"verify": verify}
    base_url = base_url or getattr(settings, "IMPORTER_BASE_URLS", {}).get(source)
    if base_url:
        parts = urlsplit(base_url)
        # The PagerDuty client takes https only (a token never goes over plain HTTP to a vendor); a
        # self-hosted Grafana OnCall may answer on http inside the company network.
        schemes = ("https",) if source == "pagerduty" else ("https", "http")
        if parts.scheme not in schemes or not parts.hostname:
            raise ValidationError({"base_url": [f"Give the {source} API's base URL as {' or '.join(schemes)}://host."]})
        kwargs["base_url"] = base_url
    elif not hasattr(module, "DEFAULT_BASE_URL"):
        raise ValidationError({"base_url": [f"Give the {source} API's base URL (e.g. https://oncall.example.com)."]})
    import pagerduty
    import requests

    try:
        return module.fetch(token=token, since=since, until=since + COMPARE_SPAN, **kwargs)
    except (pagerduty.Error, requests.RequestException) as exc:
        raise ValidationError({"token": [f"{source} refused or could not be reached: {exc}"]}) from None


def export_load(*, raw: bytes | str) -> dict:
    """A JSON export file (for air-gapped installs): the same shape `export_fetch` returns."""
    try:
        export = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({"file": [f"The file is not JSON: {exc}"]}) from None
    if not isinstance(export, dict) or export.get("source") not in SOURCES:
        raise ValidationError({"file": [f"The file names no known source (one of {', '.join(SOURCES)})."]})
    for key in ("since", "until"):
        if not isinstance(export.get(key), str):
            raise ValidationError({"file": [f"The file has no {key!r} (the window its on-call answers cover)."]})
    return export


def _module(source: str) -> Any:
    if source not in SOURCES:
        raise ValidationError({"source": [f"Choose one of {', '.join(SOURCES)}."]})
    return SOURCES[source]


def export_plan(*, export: dict) -> Plan:
    try:
        return _module(export.get("source", "")).map_export(export)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(
            {"file": [f"The export is not in the expected shape ({type(exc).__name__}: {exc})."]}
        ) from None


def import_run(*, export: dict, actor: Any, now: datetime, dry_run: bool) -> ImportReport:
    """Dry run: what would be created, what cannot be mapped and why. Apply: create it, then compare."""
    plan = export_plan(export=export)
    applied = plan_apply(plan=plan, actor=actor, now=now, dry_run=dry_run)
    report = ImportReport(source=plan.source, dry_run=dry_run, applied=applied, unmapped=plan.unmapped)
    if not dry_run:
        report.comparisons = plan_compare(plan=plan)
    return report


def report_text(report: ImportReport) -> str:
    """The report as plain text (the management command prints it)."""
    out = [f"{'Dry run' if report.dry_run else 'Import'} from {report.source}"]
    for line in report.applied.lines:
        verb = {"created": "would create" if report.dry_run else "created"}.get(line.action, line.action)
        out.append(f"  {verb:13} {line.kind}: {line.name}" + (f" ({line.detail})" if line.detail else ""))
    if report.unmapped:
        out.append("Cannot be mapped:")
        out += [f"  {u.kind}: {u.name}: {u.reason}" for u in report.unmapped]
    if report.applied.integrations and not report.dry_run:
        out.append("New integration URLs (send PagerDuty Events API v2 events here with the routing key):")
        out += [f"  {i.team} / {i.name}: {i.url} routing_key={i.routing_key}" for i in report.applied.integrations]
    for c in report.comparisons:
        span = f"{c.since:%Y-%m-%d %H:%M}–{c.until:%Y-%m-%d %H:%M} UTC"
        out.append(
            f"Comparison {c.name} ({c.team}, position {c.position}), {span}: "
            f"{c.disagreeing_minutes} of {c.minutes} minutes disagree"
        )
        out += [f"  Note: {note}" for note in c.notes]
        for d in c.disagreements:
            out.append(
                f"  {d.start:%Y-%m-%d %H:%M}–{d.end:%Y-%m-%d %H:%M} UTC: source {', '.join(d.source) or 'nobody'}; "
                f"Backstop {', '.join(d.backstop) or 'nobody'}"
            )
    return "\n".join(out)
