"""Staff pages at scale: paging, search and scoping keep the work independent of the number of teams.

Each query-count test renders a page with a few teams and with many and asserts the same count: a
page that resolved every team's roster or listed every team would grow with them.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from escalations.engine import MANUAL_STEP
from escalations.models import Incident, TimelineEvent
from portal import selectors
from portal.insights import live as insights_live
from rotations.models import Override
from tests.factories import (
    ContactMethodFactory,
    ExclusionFactory,
    IncidentFactory,
    MembershipFactory,
    OverrideFactory,
    PageFactory,
    RotationEraFactory,
    RotationFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _teams(n: int) -> list:
    """n teams, each with a rotation of two engineers, an exclusion, an override and open incidents."""
    now = timezone.now()
    teams = []
    for _ in range(n):
        team = TeamFactory()
        people = [MembershipFactory(team=team).user for _ in range(2)]
        rotation = RotationFactory(team=team)
        RotationEraFactory(rotation=rotation, participants=people)
        ExclusionFactory(user=people[0], start=now - timedelta(hours=1), end=now + timedelta(days=1))
        OverrideFactory(rotation=rotation, user=people[1], start=now - timedelta(hours=1), end=now + timedelta(hours=2))
        IncidentFactory(team=team, title=f"{team.name} is down")
        teams.append(team)
    return teams


def _queries(client, url: str, **extra) -> tuple[int, str]:
    client.get(url, **extra)  # warm: sessions, caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **extra)
    assert response.status_code == 200, response.status_code
    return len(ctx.captured_queries), response.content.decode()


STAFF_PAGES = [
    "/",
    "/teams/",
    "/teams/?q=team",
    "/schedule/",
    "/incidents/",
    "/incidents/?status=open",
    "/insights/",
    "/insights/?team=all",
    "/insights.csv",
    "/profile/",
]


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_staff_pages_do_not_grow_with_the_number_of_teams(login, staff, url):
    client = login(staff)
    _teams(3)
    few, few_body = _queries(client, url)
    _teams(selectors.TEAMS_PER_PAGE + 15)
    many, many_body = _queries(client, url)
    assert many == few, f"{url}: {few} queries with 3 teams, {many} with {selectors.TEAMS_PER_PAGE + 18}"
    # Nor does what they render: no picker lists every team or person.
    assert many_body.count("<option") == few_body.count("<option")


def test_staff_now_resolves_a_page_of_teams_not_all_of_them(login, staff, monkeypatch):
    from rotations import selectors as roster_selectors

    _teams(selectors.TEAMS_PER_PAGE * 2 + 1)
    asked = []
    real = roster_selectors.teams_oncall_rows_get
    monkeypatch.setattr(
        roster_selectors,
        "teams_oncall_rows_get",
        lambda *, team_ids, at: asked.append(set(team_ids)) or real(team_ids=team_ids, at=at),
    )
    client = login(staff)
    for url in ("/", "/teams/", "/teams/?page=3"):
        asked.clear()
        assert client.get(url).status_code == 200
        assert len(asked) == 1 and 0 < len(asked[0]) <= selectors.TEAMS_PER_PAGE, url


def test_staff_now_shows_own_teams_first_then_a_page_of_all_teams(login, staff):
    teams = _teams(selectors.TEAMS_PER_PAGE + 3)
    mine = teams[-1]
    MembershipFactory(team=mine, user=staff, role="manager")
    body = login(staff).get(reverse("portal:now")).content.decode()
    assert body.index(f'id="team-{mine.pk}"') < body.index('id="h-all-teams"')
    grid = body[body.index('id="team-grid"') :]
    assert grid.count('<article class="card"') == selectors.TEAMS_PER_PAGE
    assert 'name="q"' in body and "Next →" in grid
    # Staff in a team watch their team's incidents on "Now", not every team's.
    assert f"{mine.name} is down" in body.split('id="h-oncall"')[0]
    assert f"{teams[0].name} is down" not in body.split('id="h-oncall"')[0]


def test_staff_outside_any_team_see_every_open_incident_on_now(login, staff):
    teams = _teams(2)
    body = login(staff).get(reverse("portal:now")).content.decode()
    assert all(f"{t.name} is down" in body for t in teams)
    assert "You are not a member of any team" in body


def test_teams_page_searches_and_pages(login, staff):
    teams = _teams(selectors.TEAMS_PER_PAGE + 2)
    client = login(staff)
    body = client.get(reverse("portal:teams")).content.decode()
    assert body.count('<article class="card"') == selectors.TEAMS_PER_PAGE and "Page 1 of 2" in body
    body = client.get(reverse("portal:teams"), {"page": 2}).content.decode()
    assert body.count('<article class="card"') == 2
    target = teams[5]
    body = client.get(reverse("portal:teams"), {"q": target.name}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in body and 'id="team-grid"' in body and f">{target.name}</a>" in body
    assert body.count('<article class="card"') == 1
    body = client.get(reverse("portal:teams"), {"q": "no such team"}).content.decode()
    assert "No team matches" in body


def test_teams_page_shows_only_own_teams_to_engineers(login):
    teams = _teams(3)
    engineer = teams[0].memberships.first().user
    body = login(engineer).get(reverse("portal:teams")).content.decode()
    assert teams[0].name in body and teams[1].name not in body


def test_team_options_are_limited_and_scoped(login, staff):
    teams = _teams(25)
    body = login(staff).get(reverse("portal:team_options"), {"q": "team"}).content.decode()
    assert body.count("<option") == 20
    client = login(teams[0].memberships.first().user)
    body = client.get(reverse("portal:team_options"), {"team": ""}).content.decode()
    assert body.count("<option") == 1 and f'value="{teams[0].slug}"' in body
    body = client.get(reverse("portal:team_options"), {"q": teams[1].name}).content.decode()
    assert "<option" not in body


def test_schedule_override_pickers_are_scoped(login, staff):
    teams = _teams(4)
    mine, other = teams[0], teams[1]
    MembershipFactory(team=mine, user=staff, role="engineer")
    client = login(staff)

    def pickers(response) -> str:
        """The "Take the pager" card: the swap card below it always offers one's own rotations."""
        html = response.content.decode()
        return html[html.index('id="h-ovr"') : html.index('id="h-swap"')]

    body = pickers(client.get(reverse("portal:schedule")))
    own_rotation, other_rotation = mine.rotations.get(), other.rotations.get()
    assert f'<option value="{own_rotation.pk}"' in body and f'<option value="{other_rotation.pk}"' not in body
    other_person = other.memberships.first().user
    assert f'<option value="{other_person.pk}"' not in body
    # Narrowed to another team: its rotation and people, and the hidden scope the POST keeps.
    body = pickers(client.get(reverse("portal:schedule"), {"team": other.slug}))
    assert f'<option value="{other_rotation.pk}"' in body and f'<option value="{other_person.pk}"' in body
    assert f'<option value="{own_rotation.pk}"' not in body and f'value="{other.slug}"' in body
    # Staff outside the team may hand its pager to one of its members, but never take it themselves.
    start = timezone.localtime(timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    end = timezone.localtime(timezone.now() + timedelta(days=3, hours=2)).strftime("%Y-%m-%dT%H:%M")
    fields = {"rotation": other_rotation.pk, "position": "primary", "start": start, "end": end, "team": other.slug}
    response = client.post(reverse("portal:override_create"), fields)
    assert response.status_code == 400
    assert not Override.objects.filter(rotation=other_rotation, user=staff).exists()
    response = client.post(reverse("portal:override_create"), {**fields, "taker": other_person.pk})
    assert response.status_code == 302
    assert Override.objects.filter(rotation=other_rotation, user=other_person).exists()


def test_override_form_error_keeps_the_chosen_rotation(login, staff):
    teams = _teams(2)
    rotation = teams[1].rotations.get()
    response = login(staff).post(
        reverse("portal:override_create"),
        {"rotation": rotation.pk, "position": "nope", "start": "2026-05-01T09:00", "end": "2026-05-01T12:00"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert f'<option value="{rotation.pk}" selected>' in body and "has no position" in body


def test_engineers_cannot_pick_rotations_of_other_teams(login):
    teams = _teams(2)
    engineer = teams[0].memberships.first().user
    response = login(engineer).post(
        reverse("portal:override_create"),
        {
            "rotation": teams[1].rotations.get().pk,
            "position": "primary",
            "start": "2026-05-01T09:00",
            "end": "2026-05-01T12:00",
            "team": teams[1].slug,
        },
    )
    assert response.status_code == 400 and not Override.objects.filter(rotation__team=teams[1], user=engineer).exists()


def test_incident_list_for_staff_searches_teams_and_caps_the_count(login, staff, monkeypatch):
    teams = _teams(3)
    for i in range(6):
        IncidentFactory(team=teams[1], title=f"extra {i}")
    client = login(staff)
    body = client.get(reverse("portal:incidents")).content.decode()
    assert 'list="incident-team-options"' in body and "<datalist" in body  # a search field, not a <select>
    body = client.get(reverse("portal:incidents"), {"team": teams[1].slug}).content.decode()
    assert "extra 5" in body and f"{teams[0].name} is down" not in body
    assert client.get(reverse("portal:incidents"), {"team": teams[1].pk}).content.decode().count("extra ") == 6
    monkeypatch.setattr(selectors, "LIST_CAP", 4)
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    body = client.get(reverse("portal:incidents")).content.decode()
    assert "Page 1 of 2+" in body and "more than 4 incidents" in body


def test_incident_team_filter_is_a_select_for_a_few_teams(login):
    teams = _teams(2)
    client = login(teams[0].memberships.first().user)
    body = client.get(reverse("portal:incidents"), {"team": teams[0].pk}).content.decode()
    assert f'<option value="{teams[0].pk}" selected>' in body
    response = client.get(reverse("portal:incidents"), {"team": teams[1].slug})
    assert response.status_code == 200
    body = response.content.decode()
    assert f"{teams[1].name} is down" not in body  # not theirs: the filter is invalid, nothing listed


def test_insights_scope_for_staff(login, staff):
    teams = _teams(2)
    client = login(staff)
    body = client.get(reverse("portal:insights")).content.decode()
    assert "Choose a team." in body and "Time to acknowledge" not in body
    body = client.get(reverse("portal:insights"), {"team": "all", "days": 7}).content.decode()
    assert "All teams" in body and "Pick a team (or up to a few teams) to see on-call hours" in body
    body = client.get(reverse("portal:insights"), {"team": teams[0].slug, "days": 90}).content.decode()
    assert teams[0].name in body and "Pick a team" not in body
    text = client.get(reverse("portal:insights_csv")).content.decode()  # the CSV defaults to every team
    assert "team,,all" in text and "incidents,,2" in text


# --------------------------------------------------------------------- insights in SQL == in Python


def _event(incident, kind, at, **data):
    return TimelineEvent.objects.create(incident=incident, kind=kind, at=at, message=kind, data=data)


def test_aggregated_insights_equal_the_python_fold():
    """The PostgreSQL aggregates and the row-by-row fold (SQLite demo) agree on a varied history."""
    now = timezone.now().replace(microsecond=0)
    team, other = TeamFactory(), TeamFactory()
    ann = UserFactory(time_zone="Asia/Kolkata")  # +05:30: a quarter-hour zone
    bob = UserFactory(time_zone="America/New_York")
    cases = [
        # (minutes ago, source, severity, ack after, resolved after, resolver, steps [(step, users)], reassigned)
        (60, "alert", "critical", 2, 30, ann, [(0, [ann.pk])], False),  # first responder alone
        (600, "api", "error", 5, 90, bob, [(0, [ann.pk]), (1, [bob.pk])], False),  # reached the secondary
        (3000, "alert", "error", None, 20, ann, [(0, [ann.pk])], True),  # reassigned
        (5000, "phone", "critical", 1, None, None, [(0, [bob.pk]), (MANUAL_STEP, [ann.pk])], False),  # open
        (7000, "manual", "error", None, 15, bob, [], False),  # never paged
        (8000, "alert", "error", 3, 9, bob, [(0, [])], False),  # paged nobody
        (9000, "alert", "critical", 4, 50, ann, [(0, [bob.pk])], False),  # resolved by someone else
    ]
    for minutes, source, severity, ack, res, by, steps, moved in cases:
        created = now - timedelta(minutes=minutes)
        incident = IncidentFactory(
            team=team,
            source=source,
            severity=severity,
            created_at=created,
            status="resolved" if res else "triggered",
            resolved_at=created + timedelta(minutes=res) if res else None,
            resolved_by=by,
        )
        for k, (step, users) in enumerate(steps):
            _event(incident, "step_reached", created + timedelta(seconds=k + 1), step=step, user_ids=users)
        if ack is not None:
            _event(incident, "acknowledged", created + timedelta(minutes=ack))
            _event(incident, "acknowledged", created + timedelta(minutes=ack + 7))  # only the first counts
        if moved:
            _event(incident, "reassigned", created + timedelta(minutes=1))
        for person, status in ((ann, "sent"), (bob, "failed"), (bob, "canceled")):
            PageFactory(
                incident=incident,
                contact_method=ContactMethodFactory(user=person),
                status=status,
                due_at=created + timedelta(seconds=30),
                sent_at=created + timedelta(seconds=40),
            )
    IncidentFactory(team=other, created_at=now - timedelta(minutes=5))  # outside the team scope
    IncidentFactory(team=team, created_at=now - timedelta(days=40))  # outside the window
    assert Incident.objects.count() == len(cases) + 2
    since = now - timedelta(days=30)
    for team_ids in ([team.pk], None):
        rows = insights_live.insights_from_rows(team_ids=team_ids, since=since, now=now, days=30)
        sql = insights_live._insights_aggregated(team_ids=team_ids, since=since, now=now, days=30)
        assert sql.incidents == rows.incidents == len(cases) + (team_ids is None)
        assert sql.mtta.count == rows.mtta.count and sql.mtta.p50 == pytest.approx(rows.mtta.p50)
        assert sql.mtta.p95 == pytest.approx(rows.mtta.p95)
        assert sql.mttr.count == rows.mttr.count and sql.mttr.p95 == pytest.approx(rows.mttr.p95)
        assert sql.by_source == rows.by_source and sql.by_severity == rows.by_severity
        assert sql.secondary_rate == pytest.approx(rows.secondary_rate)
        assert sql.first_responder_share == pytest.approx(rows.first_responder_share)
        assert sql.pages_per_person == rows.pages_per_person and sql.pages_by_band == rows.pages_by_band
        assert sql.per_day == rows.per_day
    # Hand-checked: six incidents were paged by the policy (the manual step and the never-paged one
    # aside) and one reached step 1 → 1/6. Resolved with a first-paged person: ann's, the secondary's,
    # the reassigned one and "someone else" (not "paged nobody"); only ann's was resolved alone → 1/4.
    assert rows.secondary_rate == pytest.approx(1 / 6)
    assert rows.first_responder_share == pytest.approx(1 / 4)


def test_now_caps_an_engineers_own_teams(login):
    teams = _teams(selectors.MY_TEAMS_ON_NOW + 2)
    engineer = UserFactory()
    for team in teams:
        MembershipFactory(team=team, user=engineer)
    body = login(engineer).get(reverse("portal:now")).content.decode()
    oncall = body[body.index('id="h-oncall"') :]
    assert oncall.count('<article class="card"') == selectors.MY_TEAMS_ON_NOW
    assert "Find the others on Teams" in oncall and 'id="h-all-teams"' not in body
    # Their open incidents still come from every one of their teams.
    assert f"{teams[-1].name} is down" in body
