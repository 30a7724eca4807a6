"""The incident detail page's live refresh: the polled partial, its version, permissions and query cost."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from escalations.incidents.services import incident_acknowledge, incident_note_add, incident_trigger
from escalations.models import CallRecord, PhoneLine
from tests.factories import T0, MembershipFactory

pytestmark = pytest.mark.django_db


def _live(client, incident, version):
    return client.get(reverse("portal:incident_live", args=[incident.pk]), {"v": version}, HTTP_HX_REQUEST="true")


def _version(response) -> str:
    [version] = re.findall(r"""hx-vals='\{"v": "([0-9a-f-]+)"\}'""", response.content.decode())
    return version


def test_detail_page_polls_while_visible_with_its_version(login, role_users, incident):
    response = login(role_users["engineer"]).get(reverse("portal:incident", args=[incident.pk]))
    body = response.content.decode()
    assert f'hx-get="{reverse("portal:incident_live", args=[incident.pk])}"' in body
    assert "every 5s [document.visibilityState === 'visible']" in body
    assert _version(response) == response.context["version"]
    assert "Live refresh: every 5 s" not in body  # the template's comment stays a comment


def test_unchanged_incident_answers_204_with_nothing(login, role_users, incident):
    client = login(role_users["engineer"])
    version = _version(client.get(reverse("portal:incident", args=[incident.pk])))
    response = _live(client, incident, version)
    assert response.status_code == 204 and response.content == b""


def test_after_an_action_the_partial_brings_the_new_timeline_event(login, role_users, incident):
    viewer = login(role_users["viewer"])
    version = _version(viewer.get(reverse("portal:incident", args=[incident.pk])))
    # Someone else, elsewhere, acknowledges and writes a note.
    incident_acknowledge(incident=incident, by=role_users["engineer"], via="web")
    incident_note_add(incident=incident, by=role_users["engineer"], text="Rolling back deploy 42", via="web")
    response = _live(viewer, incident, version)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Rolling back deploy 42" in body
    assert re.search(r'<ol id="incident-timeline" hx-swap-oob="innerHTML">', body)
    assert re.search(r'<div id="incident-head" hx-swap-oob="innerHTML">[\s\S]*Acknowledged', body)
    assert "Acknowledged by " in body  # engine state in words
    new_version = _version(response)
    assert new_version != version
    assert _live(viewer, incident, new_version).status_code == 204


def test_partial_after_own_htmx_action_carries_the_new_version(login, role_users, incident):
    client = login(role_users["engineer"])
    old = _version(client.get(reverse("portal:incident", args=[incident.pk])))
    response = client.post(
        reverse("portal:incident_note", args=[incident.pk]), {"text": "Looking"}, HTTP_HX_REQUEST="true"
    )
    assert _live(client, incident, _version(response)).status_code == 204
    assert _live(client, incident, old).status_code == 200


def test_the_partial_leaves_the_note_form_alone_and_actions_follow_state(login, role_users, incident):
    client = login(role_users["engineer"])
    body = _live(client, incident, "stale").content.decode()
    assert 'id="note-text"' not in body and 'id="incident-panel"' not in body
    assert 'id="act-acknowledge"' in body
    incident_acknowledge(incident=incident, by=role_users["manager"], via="web")
    body = _live(client, incident, "stale").content.decode()
    assert 'id="act-acknowledge"' not in body and 'id="act-resolve"' in body


def test_the_note_being_typed_survives_action_swaps_but_clears_after_saving(login, role_users, incident):
    client = login(role_users["engineer"])
    body = client.post(reverse("portal:incident_acknowledge", args=[incident.pk]), HTTP_HX_REQUEST="true")
    assert re.search(r'<textarea id="note-text"[^>]* hx-preserve', body.content.decode())
    body = client.post(reverse("portal:incident_note", args=[incident.pk]), {"text": "Done"}, HTTP_HX_REQUEST="true")
    assert not re.search(r'<textarea id="note-text"[^>]* hx-preserve', body.content.decode())


def test_call_audio_is_preserved_across_refreshes(login, team, role_users, policy):
    incident = incident_trigger(team=team, title="Caller: flood", source="phone").incident
    line = PhoneLine.objects.create(number="+15550100999", name="Emergency line", team=team)
    call = CallRecord.objects.create(
        call_sid="CA" + "2" * 32,
        line=line,
        from_number="+15550142001",
        to_number=line.number,
        started_at=T0,
        incident=incident,
        recording_url="https://api.twilio.com/rec/RE1",
    )
    client = login(role_users["engineer"])
    page = client.get(reverse("portal:incident", args=[incident.pk])).content.decode()
    assert f'<audio id="call-audio-{call.pk}" hx-preserve' in page
    # The refreshed section carries the same player, which htmx keeps (playback goes on).
    live = _live(client, incident, "stale").content.decode()
    assert f'<audio id="call-audio-{call.pk}" hx-preserve' in live


def _voicemail(call_sid: str, at) -> CallRecord:
    from escalations.phone import services as phone

    phone.call_start(
        line=PhoneLine.objects.get(), call_sid=call_sid, from_number="+15550142001", to_number="+15550100999", now=at
    )
    return phone.call_recording_received(
        call_sid=call_sid,
        recording_sid="RE" + call_sid[2:],
        duration=14,
        now=at + timedelta(seconds=20),
        recording_url=f"https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE{call_sid[2:]}",
    )


def test_a_transcript_or_call_arriving_after_the_page_opened_reaches_it(login, team, role_users):
    from escalations.phone import services as phone

    PhoneLine.objects.create(number="+15550100999", name="Emergency line", team=team)
    first = _voicemail("CA" + "3" * 32, T0)
    incident = first.incident
    client = login(role_users["viewer"])
    page = client.get(reverse("portal:incident", args=[incident.pk]))
    assert 'id="incident-call"' in page.content.decode() and "Water in the basement" not in page.content.decode()
    version = _version(page)

    phone.call_transcription_received(
        call_sid=first.call_sid, text="Water in the basement", status="completed", now=T0 + timedelta(minutes=1)
    )
    response = _live(client, incident, version)
    body = response.content.decode()
    call_region = body[body.index('<section id="incident-call" hx-swap-oob="innerHTML">') :]
    call_region = call_region[: call_region.index("</section>")]
    assert "Water in the basement" in call_region and f'id="call-audio-{first.pk}"' in call_region
    version = _version(response)
    assert _live(client, incident, version).status_code == 204

    # The caller rings again: the second voicemail joins the incident and shows with its player.
    second = _voicemail("CA" + "4" * 32, T0 + timedelta(minutes=3))
    assert second.incident_id == incident.pk
    response = _live(client, incident, version)
    assert f'id="call-audio-{second.pk}" hx-preserve' in response.content.decode()
    assert second.reference in response.content.decode()
    version = _version(response)

    # Every callback saves the call, so the version follows one that adds no timeline event too.
    events = incident.timeline.count()
    phone.call_status_received(call_sid=first.call_sid, call_status="completed", now=T0 + timedelta(minutes=4))
    assert incident.timeline.count() == events
    assert _live(client, incident, version).status_code == 200


def test_no_call_section_for_other_incidents(login, role_users, incident):
    body = _live(login(role_users["engineer"]), incident, "stale").content.decode()
    assert 'id="incident-call"' not in body


@pytest.mark.parametrize(
    "role,status", [("staff", 200), ("manager", 200), ("engineer", 200), ("viewer", 200), ("outsider", 404)]
)
def test_partial_permissions_match_the_detail_page(login, role_users, incident, role, status):
    client = login(role_users[role])
    assert _live(client, incident, "stale").status_code == status
    assert client.get(reverse("portal:incident", args=[incident.pk])).status_code == status


def test_partial_for_another_teams_member_and_anonymous(client, login, incident):
    stranger = MembershipFactory(role="manager").user
    assert _live(login(stranger), incident, "stale").status_code == 404
    assert _live(client, incident, "stale").status_code == 302
    assert login(stranger).get(reverse("portal:incident_live", args=[999999])).status_code == 404


def test_viewer_partial_has_no_action_buttons(login, role_users, incident):
    body = _live(login(role_users["viewer"]), incident, "stale").content.decode()
    assert 'id="act-acknowledge"' not in body and "only the team's engineers and managers" in body


@pytest.mark.parametrize("n", [3, 40])
def test_partial_query_count_is_small_and_constant(
    login, team, role_users, policy, incident, django_assert_max_num_queries, n
):
    for i in range(n):
        incident_note_add(incident=incident, by=role_users["engineer"], text=f"note {i}", via="web")
    client = login(role_users["engineer"])
    version = _version(client.get(reverse("portal:incident", args=[incident.pk])))
    with django_assert_max_num_queries(4):  # session, user, version, the user's team roles
        assert _live(client, incident, version).status_code == 204
    # As many as the detail page itself, the team's policies for the "move to policy" picker included.
    with django_assert_max_num_queries(11):
        assert _live(client, incident, "stale").status_code == 200
