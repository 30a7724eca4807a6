"""Insights and the demo outbox."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from escalations.models import Incident
from portal import charts, selectors
from portal.insights import load as insights_load
from portal.insights import metrics
from portal.models import User
from rotations.models import Membership, Team

DAYS = (7, 30, 90)


TOP_PEOPLE = 20  # charts and the hour-band table show the busiest people; the CSV has everyone


@dataclass
class Scope:
    """Which incidents Insights covers: one team, the user's own teams, or (staff) every team."""

    team: Team | None
    team_ids: list[int] | None  # None: every team
    label: str
    key: str  # what ?team= says: a slug, "all", or "" for the user's own teams
    chosen: bool = True  # False: staff outside any team who have not picked a scope yet


def _insights_params(request: HttpRequest, *, default_all: bool = False) -> tuple[Scope, int]:
    user = request.user
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in DAYS else 30
    key = request.GET.get("team", "").strip()[:100]
    mine = list(Membership.objects.filter(user=user).values_list("team_id", flat=True))
    if key == "all" and user.is_staff:
        return Scope(team=None, team_ids=None, label="All teams", key="all"), days
    if key and key != "all":
        team = selectors.visible_team_get(user=user, key=key)
        if team is None:
            raise Http404("No such team.")
        return Scope(team=team, team_ids=[team.pk], label=team.name, key=team.slug), days
    if mine or not user.is_staff:
        return Scope(team=None, team_ids=mine, label="All my teams", key=""), days
    # Staff outside any team: aggregating every team is a deliberate choice (the CSV makes it).
    if default_all:
        return Scope(team=None, team_ids=None, label="All teams", key="all"), days
    return Scope(team=None, team_ids=[], label="", key="", chosen=False), days


def _load(scope: Scope, days: int, now) -> metrics.Insights:
    few_teams = scope.team_ids is not None and len(scope.team_ids) <= insights_load.ONCALL_TEAMS_MAX
    return insights_load.insights_load(team_ids=scope.team_ids, now=now, days=days, with_oncall=few_teams)


def _names(user_ids) -> dict[int, User]:
    return User.objects.in_bulk(list(user_ids)) if user_ids else {}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _top(values: dict, n: int = TOP_PEOPLE) -> list:
    return list(values.items())[:n]


@login_required
def insights(request: HttpRequest) -> HttpResponse:
    scope, days = _insights_params(request)
    context = {
        "scope": scope,
        "team": scope.team,
        "days": days,
        "day_choices": DAYS,
        "query": request.GET.urlencode(),
        "top_people": TOP_PEOPLE,
    }
    if not scope.chosen:
        return render(request, "portal/insights.html", context)
    data = _load(scope, days, timezone.now())
    pages_top = _top(data.pages_per_person)
    hours_top = _top(data.oncall_hours or {})
    band_top = sorted(data.pages_by_band.items(), key=lambda kv: -sum(kv[1].values()))[:TOP_PEOPLE]
    users = _names({u for u, _ in pages_top} | {u for u, _ in hours_top} | {u for u, _ in band_top})
    name = lambda uid: users[uid].display_name if uid in users else f"#{uid}"  # noqa: E731
    context |= {
        "data": data,
        "secondary_ok": metrics.in_band(data.secondary_rate, metrics.SECONDARY_BAND),
        "first_ok": metrics.in_band(data.first_responder_share, metrics.FIRST_RESPONDER_BAND),
        "secondary_pct": _pct(data.secondary_rate),
        "first_pct": _pct(data.first_responder_share),
        "chart_source": charts.bar_chart(
            [(Incident.Source(k).label if k in Incident.Source.values else k, v) for k, v in data.by_source.items()],
            title="Incidents by source",
        ),
        "chart_severity": charts.bar_chart(
            [(k.title(), v) for k, v in data.by_severity.items()], title="Incidents by severity", css_class="bar alt"
        ),
        "chart_pages": charts.bar_chart([(name(u), n) for u, n in pages_top], title="Pages per person"),
        "chart_hours": charts.bar_chart(
            [(name(u), round(h, 1)) for u, h in hours_top],
            title="On-call hours per person",
            unit=" h",
            css_class="bar alt",
        )
        if data.oncall_hours is not None
        else None,
        "oncall_skipped": data.oncall_hours is None,
        "more_people": max(len(data.pages_per_person), len(data.oncall_hours or {})) > TOP_PEOPLE,
        "spark": charts.sparkline(data.per_day, title=f"Incidents per UTC day, last {days} days"),
        "percentile_error": f"{metrics.PERCENTILE_ERROR * 100:.1f} %",
        "band_rows": [(users.get(uid), bands, sum(bands.values())) for uid, bands in band_top],
    }
    return render(request, "portal/insights.html", context)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): a person's
# e-mail address or any other text we did not choose gets a leading apostrophe, which Excel, LibreOffice
# and Google Sheets show as text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _SafeCsvWriter:
    def __init__(self, buffer: io.StringIO) -> None:
        self._writer = csv.writer(buffer)

    def writerow(self, row: list[object]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])


@login_required
def insights_csv(request: HttpRequest) -> HttpResponse:
    scope, days = _insights_params(request, default_all=True)
    data = _load(scope, days, timezone.now())
    users = selectors.user_emails_get(
        user_ids=set(data.pages_per_person) | set(data.oncall_hours or {}) | set(data.pages_by_band)
    )
    buffer = io.StringIO()  # one write into the response: per-row writes cost more than the CSV itself
    out = _SafeCsvWriter(buffer)
    out.writerow(["metric", "key", "value"])
    out.writerow(["window_days", "", days])
    out.writerow(["team", "", scope.team.slug if scope.team else "all"])
    out.writerow(["incidents", "", data.incidents])
    for label, p in (("mtta_seconds", data.mtta), ("mttr_seconds", data.mttr)):
        out.writerow([label, "p50", "" if p.p50 is None else round(p.p50)])
        out.writerow([label, "p95", "" if p.p95 is None else round(p.p95)])
    for k, v in data.by_source.items():
        out.writerow(["incidents_by_source", k, v])
    for k, v in data.by_severity.items():
        out.writerow(["incidents_by_severity", k, v])
    out.writerow(["secondary_page_rate", "", "" if data.secondary_rate is None else f"{data.secondary_rate:.4f}"])
    out.writerow(
        ["first_responder_share", "", "" if data.first_responder_share is None else f"{data.first_responder_share:.4f}"]
    )
    label = lambda uid: users.get(uid, str(uid))  # noqa: E731
    for uid, n in data.pages_per_person.items():
        out.writerow(["pages", label(uid), n])
    for uid, bands in data.pages_by_band.items():
        for band, n in bands.items():
            out.writerow([f"pages_{band}", label(uid), n])
    for uid, hours in (data.oncall_hours or {}).items():
        out.writerow(["oncall_hours", label(uid), f"{hours:.2f}"])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backstop-insights-{days}d.csv"'
    return response
