"""The handover-note form and the team handover log (portal, under /rosters/)."""

import pytest

from rotations.handover import handovers_run
from rotations.models import HandoverNote
from tests.factories import UserFactory
from tests.rotations.conftest import utc


def test_engineer_saves_a_handover_note(client, week):
    client.force_login(week.A)
    page = client.get("/rosters/teams/ops/handover-note/")
    assert page.status_code == 200
    assert b'<option value="secondary">' in page.content
    response = client.post("/rosters/teams/ops/handover-note/", {"position": "primary", "text": "watch db1"})
    assert response.status_code == 302
    note = HandoverNote.objects.get()
    assert (note.author, note.team, note.position, note.text) == (week.A, week.team, "primary", "watch db1")


def test_note_form_is_for_people_who_work_incidents(client, week):
    from rotations.models import Membership
    from tests.factories import MembershipFactory

    viewer = MembershipFactory(team=week.team, role=Membership.Role.VIEWER).user
    client.force_login(viewer)
    assert client.get("/rosters/teams/ops/handover-note/").status_code == 403
    assert client.get("/rosters/teams/ops/handovers/").status_code == 200
    client.force_login(UserFactory())
    assert client.get("/rosters/teams/ops/handovers/").status_code == 403


@pytest.mark.parametrize("path", ["/rosters/teams/ops/handover-note/", "/rosters/teams/ops/handovers/"])
def test_login_required(client, week, path):
    assert client.get(path).status_code == 302


def test_handover_log_lists_sent_and_cancelled(client, week):
    handovers_run(now=utc(2026, 10, 23, 6, 59))
    handovers_run(now=utc(2026, 10, 23, 7))
    client.force_login(week.C)
    html = client.get("/rosters/teams/ops/handovers/").content.decode()
    assert "cancelled by override" in html
    assert "<td>Cat</td>" in html and "<td>Dan</td>" in html
    assert html.count("<td>sent</td>") == 1
