"""Change events (PagerDuty change API) on the team page's timeline and as "Recent changes" on incidents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escalations.models import ChangeEvent
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


def _change(team, summary: str, at, **extra) -> ChangeEvent:
    return ChangeEvent.objects.create(team=team, summary=summary, timestamp=at, received_at=at, **extra)


def test_incident_page_shows_changes_shortly_before(login, team, role_users, incident):
    opened = incident.created_at
    _change(
        team,
        "Deploy checkout v42",
        opened - timedelta(minutes=10),
        source="ci",
        links=[{"href": "https://ci.example/42", "text": "Build 42"}, {"href": "javascript:alert(1)", "text": "x"}],
    )
    _change(team, "Old config push", opened - timedelta(hours=2))
    _change(team, "Deploy after the fact", opened + timedelta(minutes=5))
    _change(TeamFactory(), "Other team's deploy", opened - timedelta(minutes=5))
    body = login(role_users["engineer"]).get(reverse("portal:incident", args=[incident.pk])).content.decode()
    section = body[body.index('id="incident-changes"') :]
    section = section[: section.index("</section>")]
    assert "Recent changes" in section
    assert "Deploy checkout v42" in section and "from ci" in section
    assert 'href="https://ci.example/42"' in section
    assert "javascript:" not in section
    for absent in ("Old config push", "Deploy after the fact", "Other team's deploy"):
        assert absent not in section


def test_incident_page_without_recent_changes_has_no_section(login, team, role_users, incident):
    _change(team, "Old config push", incident.created_at - timedelta(hours=2))
    body = login(role_users["engineer"]).get(reverse("portal:incident", args=[incident.pk])).content.decode()
    assert 'id="incident-changes"' not in body


def test_team_timeline_puts_changes_next_to_the_incidents_they_may_explain(login, team, role_users, incident):
    opened = incident.created_at
    _change(team, "Deploy checkout v42", opened - timedelta(minutes=10))
    _change(team, "Old config push", opened - timedelta(hours=2))
    _change(TeamFactory(), "Other team's deploy", opened - timedelta(minutes=5))
    body = login(role_users["viewer"]).get(reverse("portal:team", args=[team.slug])).content.decode()
    section = body[body.index('id="team-timeline"') :]
    section = section[: section.index("</section>")]
    assert "Other team's deploy" not in section
    # Newest first: the incident, then the change just before it (naming it), then the old one.
    i_pos, near_pos, old_pos = (
        section.index(s) for s in (f"#{incident.pk} ", "Deploy checkout v42", "Old config push")
    )
    assert i_pos < near_pos < old_pos
    near_item = section[near_pos : section.index("</li>", near_pos)]
    assert f'may explain <a href="{reverse("portal:incident", args=[incident.pk])}">#{incident.pk}</a>' in near_item
    old_item = section[old_pos : section.index("</li>", old_pos)]
    assert "may explain" not in old_item
    assert "1 change shortly before" in section


def test_team_timeline_is_bounded(login, team, role_users):
    now = timezone.now()
    for n in range(60):
        _change(team, f"Change number {n:02d}", now - timedelta(minutes=n))
    client = login(role_users["manager"])
    body = client.get(reverse("portal:team", args=[team.slug])).content.decode()
    assert body.count("Change number") == 25
    assert "Change number 00" in body and "Change number 30" not in body
