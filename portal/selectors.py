"""Portal reads. Every function issues a fixed number of queries whatever the data size."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from django.core.paginator import Page as PaginatorPage
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from config.parsing import small_uint
from escalations import engine
from escalations.incidents.selectors import incidents_open_count_by_team
from escalations.models import CallRecord, EscalationPolicy, Incident, Page, TimelineEvent
from portal.filters import IncidentFilter
from portal.models import User
from portal.permissions import user_team_ids
from rotations import selectors as roster_selectors
from rotations.models import Exclusion, Membership, Override, SwapRequest, Team

PAGE_SIZE = 25


# ------------------------------------------------------------------------------ teams


TEAMS_PER_PAGE = 12  # a page of team cards: each card resolves who is on call
MY_TEAMS_ON_NOW = 12  # "Now" shows this many of the user's own teams; the Teams page has the rest


def my_teams_get(*, user: User, limit: int | None = None) -> list[Team]:
    """Teams the user belongs to, by name (staff too: their own teams, not every team)."""
    qs = Team.objects.filter(memberships__user=user).order_by("name", "pk")
    return list(qs[:limit] if limit is not None else qs)


def visible_teams_qs(*, user: User) -> QuerySet[Team]:
    """Teams the user may see, as a query: staff see every team without a thousand-id IN list."""
    if user.is_staff:
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user)


def teams_search(*, user: User, q: str = "") -> QuerySet[Team]:
    """Visible teams whose name or slug contains `q`, by name."""
    qs = visible_teams_qs(user=user)
    q = q.strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(slug__icontains=q.lower()))
    return qs.order_by("name", "pk")


def teams_page_get(*, user: User, q: str = "", page: int | str | None = None) -> PaginatorPage:
    return Paginator(teams_search(user=user, q=q), TEAMS_PER_PAGE).get_page(page)


def visible_team_get(*, user: User, key: str) -> Team | None:
    """A visible team by id or slug (the pickers send either)."""
    qs = visible_teams_qs(user=user)
    team = qs.filter(slug=key).first()
    if team is None and (pk := small_uint(key)) is not None:
        team = qs.filter(pk=pk).first()
    return team


def team_cards_get(*, teams: list[Team], at: datetime, oncall: dict | None = None) -> list[tuple[Team, int, list]]:
    """(team, open incidents, who is on call) for a page of teams: a fixed number of queries.

    Pass `oncall` (teams_oncall_rows_get) when the caller already resolved these teams.
    """
    ids = [t.pk for t in teams]
    if not ids:
        return []
    if oncall is None:
        oncall = roster_selectors.teams_oncall_rows_get(team_ids=ids, at=at)
    open_counts = incidents_open_count_by_team(ids)
    return [(t, open_counts.get(t.pk, 0), oncall.get(t.pk, [])) for t in teams]


def team_members_get(*, team: Team) -> list[Membership]:
    return list(
        Membership.objects.filter(team=team).select_related("user").order_by("role", "user__full_name", "user__email")
    )


# -------------------------------------------------------------------------- incidents


LIST_CAP = 1000  # the incident list counts at most this many matches: no COUNT(*) over 100k rows


class CappedPaginator(Paginator):
    """Counts at most LIST_CAP rows (`capped` tells whether there are more): pages beyond are reached
    by narrowing the filters (time range, team, status), as in PagerDuty's incident list."""

    capped = False

    @cached_property
    def count(self) -> int:
        n = self.object_list[: LIST_CAP + 1].count()
        self.capped = n > LIST_CAP
        return min(n, LIST_CAP)


def incident_list_get(
    *, user: User, params, page: int | str | None, now: datetime | None = None
) -> tuple[IncidentFilter, PaginatorPage]:
    """The filtered incident list, a page at a time (team names and assignees prefetched).

    Staff see every team: no team filter at all rather than an IN list of every team's id.
    """
    team_ids = None if user.is_staff else user_team_ids(user=user)
    base = Incident.objects.all() if team_ids is None else Incident.objects.filter(team_id__in=team_ids)
    base = (
        base.defer("payload", "policy_snapshot", "details", "links")  # the list shows none of them
        .select_related("team")
        .prefetch_related(Prefetch("assignees", queryset=User.objects.only("pk", "email", "full_name")))
        .order_by("-created_at", "-id")
    )
    filterset = IncidentFilter(params, queryset=base, user=user, team_ids=team_ids, now=now)
    qs = filterset.qs if filterset.is_valid() else base.none()
    paginator = CappedPaginator(qs, PAGE_SIZE)
    return filterset, paginator.get_page(page)


def incident_get(*, pk: int) -> Incident:
    return (
        Incident.objects.select_related("team", "policy", "acknowledged_by", "resolved_by")
        .prefetch_related("assignees")
        .get(pk=pk)
    )


def user_emails_get(*, user_ids: Iterable[int]) -> dict[int, str]:
    """{user id: e-mail} for many users (an Insights CSV names everyone paged)."""
    ids = list(user_ids)
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        # One array parameter: Django prepares an IN list of thousands of ids slower than PostgreSQL
        # answers it (28 ms against 8 ms for 4,000).
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, email FROM {User._meta.db_table} WHERE id = ANY(%s)", [ids])
            return dict(cursor.fetchall())
    return dict(User.objects.filter(pk__in=ids).values_list("pk", "email"))


def incident_version_get(*, pk: int) -> tuple[int, str]:
    """(team id, live version) in one query. The version changes whenever the detail page would.

    It leads with the newest timeline event id (most changes add one), then fingerprints what can change
    without an event: the incident row (its save() bumps updated_at), its pages' delivery states and its
    emergency calls (a recording or transcript that arrives later; every callback saves the record).
    """
    pages = Page.objects.filter(incident=OuterRef("pk")).order_by().values("incident")
    calls = CallRecord.objects.filter(incident=OuterRef("pk")).order_by().values("incident")
    row = (
        Incident.objects.filter(pk=pk)
        .annotate(
            last_event=Subquery(TimelineEvent.objects.filter(incident=OuterRef("pk")).order_by("-id").values("id")[:1]),
            pages_n=Subquery(pages.annotate(v=Count("id")).values("v")),
            pages_status=Subquery(pages.annotate(v=Max("status_at")).values("v")),
            pages_claimed=Subquery(pages.annotate(v=Max("claimed_at")).values("v")),
            calls_n=Subquery(calls.annotate(v=Count("id")).values("v")),
            calls_saved=Subquery(calls.annotate(v=Max("updated_at")).values("v")),
        )
        .values_list(
            "team_id", "last_event", "updated_at", "pages_n", "pages_status", "pages_claimed", "calls_n", "calls_saved"
        )
        .get()
    )
    team_id, last_event, *rest = row
    digest = hashlib.blake2s(repr(rest).encode(), digest_size=6).hexdigest()
    return team_id, f"{last_event or 0}-{digest}"


def incident_timeline_get(*, incident: Incident) -> list[TimelineEvent]:
    return list(incident.timeline.select_related("actor").order_by("at", "id"))


def incident_pages_get(*, incident: Incident) -> list[Page]:
    return list(incident.pages.select_related("user").order_by("due_at", "id"))


def my_open_incidents_get(*, user: User, team_ids, limit: int = 20) -> list[Incident]:
    """Open incidents of the user's teams (every team when team_ids is None), the ones assigned to them first."""
    qs = Incident.objects.all() if team_ids is None else Incident.objects.filter(team_id__in=team_ids)
    incidents = list(
        qs.exclude(status=Incident.Status.RESOLVED)
        .select_related("team")
        .prefetch_related("assignees")
        .order_by("-created_at", "-id")[:limit]
    )
    for incident in incidents:
        incident.is_mine = any(a.pk == user.pk for a in incident.assignees.all())
    incidents.sort(key=lambda i: (not i.is_mine, i.status != Incident.Status.TRIGGERED))
    return incidents


# --------------------------------------------------------------------- engine in words


def _local(moment: datetime, now: datetime) -> str:
    local = timezone.localtime(moment)
    if local.date() == timezone.localtime(now).date():
        return local.strftime("%H:%M")
    return local.strftime("%a %d %b %H:%M")


def _targets_words(step: engine.StepSpec, names: dict[int, str]) -> str:
    words = []
    for target in step.targets:
        if target.kind is engine.TargetKind.POSITION:
            words.append(target.position)
        elif target.kind is engine.TargetKind.USER:
            words.append(names.get(target.user_id, "a named person"))
        elif target.kind is engine.TargetKind.TEAM:
            words.append("the whole team")
        else:
            words.append("the team managers")
    return ", ".join(words) or "nobody"


def policy_spec_of(incident: Incident) -> engine.PolicySpec | None:
    if not incident.policy_snapshot:
        return None
    try:
        return engine.PolicySpec.from_json(incident.policy_snapshot)
    except (KeyError, ValueError):
        return None


def engine_state_describe(*, incident: Incident, now: datetime | None = None) -> str:
    """What the escalation engine will do next, in plain words ("Next: step 2 (secondary) at 03:17")."""
    now = now or timezone.now()
    spec = policy_spec_of(incident)
    if incident.status == Incident.Status.RESOLVED:
        who = f" by {incident.resolved_by.display_name}" if incident.resolved_by else " automatically"
        return f"Resolved{who} at {_local(incident.resolved_at or now, now)}. Nobody will be paged."
    if incident.suppressed:
        return "Recorded during a maintenance window: nobody is paged."
    if spec is None or not spec.steps:
        return "No escalation policy with steps: nobody is paged automatically. Reassign to page someone."
    user_ids = {t.user_id for s in spec.steps for t in s.targets if t.user_id}
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=user_ids)} if user_ids else {}
    if incident.status == Incident.Status.ACKNOWLEDGED:
        who = incident.acknowledged_by.display_name if incident.acknowledged_by else "someone"
        if incident.snoozed_until:
            return f"Snoozed by {who}: paging starts again from step 1 at {_local(incident.snoozed_until, now)}."
        if incident.next_action_at:
            return (
                f"Acknowledged by {who}. If it is not resolved, it re-triggers at "
                f"{_local(incident.next_action_at, now)}."
            )
        return f"Acknowledged by {who}. No further paging unless it is re-triggered or escalated."
    if incident.exhausted and incident.next_action_at is None:
        return f"Every step has been paged ({len(spec.steps)} step(s)); nobody is left to escalate to."
    nxt = _successor(spec, incident.step, incident.loop)
    if nxt is None or incident.next_action_at is None:
        return "Last step paged; waiting for an acknowledgement. Nobody further will be paged."
    step, loop = nxt
    loop_words = f", repeat {loop + 1}" if loop else ""
    return (
        f"Next: step {step + 1} ({_targets_words(spec.steps[step], names)}){loop_words} at "
        f"{_local(incident.next_action_at, now)} unless acknowledged."
    )


def _successor(spec: engine.PolicySpec, step: int, loop: int) -> tuple[int, int] | None:
    n = len(spec.steps)
    if step + 1 < n:
        return step + 1, loop
    if spec.repeat is None or loop < spec.repeat:
        return 0, loop + 1
    return None


# ------------------------------------------------------------------------------ policies


def team_policy_choices_get(*, team_id: int) -> list[tuple[int, str]]:
    """(id, name) of the team's escalation policies, for pickers."""
    return list(EscalationPolicy.objects.filter(team_id=team_id).order_by("name", "pk").values_list("pk", "name"))


def team_policies_get(*, team: Team) -> list[EscalationPolicy]:
    return list(EscalationPolicy.objects.filter(team=team).prefetch_related("steps__targets__user").order_by("name"))


# -------------------------------------------------------------------------- phone calls


def incident_call_get(*, incident: Incident) -> dict | None:
    """For emergency-line incidents: the calls behind it. None when not a phone incident."""
    if incident.source != Incident.Source.PHONE:
        return None
    calls = list(CallRecord.objects.filter(incident=incident).select_related("customer_contact").order_by("started_at"))
    for call in calls:
        call.recording_path = reverse("calls:recording", args=[call.pk]) if call.recording_url else ""
    return {"calls": calls}


# ------------------------------------------------------------------------------ my time off and overrides


def exclusion_visible_get(*, user: User, pk: int) -> Exclusion | None:
    """An exclusion the user may see (as the API's list): their own, a teammate's, or any for staff."""
    qs = Exclusion.objects.select_related("user").filter(pk=pk)
    if not user.is_staff:
        teammates = Membership.objects.filter(team_id__in=user_team_ids(user=user)).values("user_id")
        qs = qs.filter(Q(user=user) | Q(user_id__in=teammates))
    return qs.first()


def override_visible_get(*, user: User, pk: int) -> Override | None:
    """An override of a team the user sees."""
    qs = Override.objects.select_related("rotation__team", "user", "replaces_user").filter(pk=pk)
    if not user.is_staff:
        qs = qs.filter(rotation__team_id__in=user_team_ids(user=user))
    return qs.first()


def my_overrides_get(*, user: User, after: datetime) -> list[Override]:
    """Current and future overrides the user takes part in: taking the pager, or having theirs taken."""
    return list(
        Override.objects.filter(Q(user=user) | Q(replaces_user=user), end__gt=after)
        .select_related("rotation__team", "user", "replaces_user")
        .order_by("start", "pk")
    )


def paging_teams_get(*, user: User) -> list[Team]:
    """Teams whose on-call the user may page by hand: those they are an engineer or manager of."""
    roles = [Membership.Role.MANAGER, Membership.Role.ENGINEER]
    return list(Team.objects.filter(memberships__user=user, memberships__role__in=roles).order_by("name", "pk"))


def swaps_get(*, user: User, role: str, after: datetime) -> list[SwapRequest]:
    """Swap requests the user asked ("requester") or was asked ("taker"), not yet over."""
    if role not in ("requester", "taker"):
        raise ValueError(f"role is requester or taker, not {role!r}")
    return list(
        SwapRequest.objects.filter(**{role: user}, end__gt=after)
        .select_related("rotation__team", "requester", "taker")
        .order_by("start", "pk")[:50]
    )
