"""Roster health on the team page: open gaps and on-call-during-time-off, with links to fix them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rotations.models import GapAlert
from rotations.services import rotations as services_rotations
from tests.factories import ExclusionFactory, OverrideFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def roster(team, role_users):
    engineer, manager = role_users["engineer"], role_users["manager"]
    for user in (engineer, manager):
        user.time_zone = "UTC"
        user.save(update_fields=["time_zone"])
    rotation = services_rotations.rotation_create(
        team=team,
        name="Primary",
        time_zone="UTC",
        positions=["primary"],
        start_date=timezone.now().date() - timedelta(days=3),
        handoff_time=time(0, 0),
        shift_unit="days",
        shift_length=1,
        participants=[engineer],
        actor=role_users["staff"],
    )
    day = datetime.combine(timezone.now().date() + timedelta(days=2), time(0, 0), tzinfo=UTC)
    gap_start, gap_end = day + timedelta(hours=10), day + timedelta(hours=14)
    ExclusionFactory(user=engineer, start=gap_start, end=gap_end)
    # The manager takes an override while away: on call during their own time off.
    away_start, away_end = day + timedelta(days=1, hours=8), day + timedelta(days=1, hours=12)
    ExclusionFactory(user=manager, start=away_start - timedelta(hours=1), end=away_end)
    OverrideFactory(rotation=rotation, user=manager, start=away_start, end=away_end, position="primary")
    GapAlert.objects.create(
        team=team, position="primary", start=gap_start, end=gap_end, kind="gap", created_at=timezone.now()
    )
    return rotation, (gap_start, gap_end), (away_start, away_end)


def test_team_page_lists_problems_with_fix_links(login, team, role_users, roster):
    rotation, (gap_start, gap_end), (away_start, away_end) = roster
    manager = role_users["manager"]
    body = login(manager).get(reverse("portal:team", args=[team.slug])).content.decode()
    section = body[body.index('id="roster-health"') :]
    section = section[: section.index("</section>")]
    assert "Nobody is <strong>primary</strong>" in section
    assert f"<strong>{html.escape(manager.display_name)}</strong> is primary during their time off" in section
    assert "managers told" in section
    links = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', section)]
    cover = f"{reverse('portal:team_override_new', args=[team.slug])}?rotation={rotation.pk}&position=primary"
    gap_link = next(h for h in links if h.startswith(cover))
    assert f"start={gap_start:%Y-%m-%dT%H:%M}" in gap_link and f"end={gap_end:%Y-%m-%dT%H:%M}" in gap_link
    assert any(f"replaces_user={manager.pk}" in h and f"start={away_start:%Y-%m-%dT%H:%M}" in h for h in links)
    assert reverse("portal:rotation_edit", args=[rotation.pk]) in links
    assert any(h.startswith("/schedule/exclusions/") and h.endswith("/edit") for h in links)
    # The prefilled override form opens with the gap's window.
    form = login(manager).get(gap_link)
    assert form.status_code == 200
    assert f"{gap_start:%Y-%m-%dT%H:%M}" in form.content.decode()


def test_engineers_see_the_problems_without_fix_links(login, team, role_users, roster):
    body = login(role_users["engineer"]).get(reverse("portal:team", args=[team.slug])).content.decode()
    section = body[body.index('id="roster-health"') :]
    section = section[: section.index("</section>")]
    assert "Nobody is <strong>primary</strong>" in section
    assert "overrides/new" not in section and "Edit rotation" not in section


def test_a_covered_gap_leaves_the_list(login, team, role_users, roster):
    rotation, (gap_start, gap_end), _ = roster
    OverrideFactory(rotation=rotation, user=role_users["manager"], start=gap_start, end=gap_end, position="primary")
    body = login(role_users["manager"]).get(reverse("portal:team", args=[team.slug])).content.decode()
    section = body[body.index('id="roster-health"') :]
    section = section[: section.index("</section>")]
    assert "Nobody is <strong>primary</strong>" not in section
    assert "during their time off" in section
