"""The Slack app against a fake Slack Web API (the real slack_sdk), with requests signed as Slack signs them."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client

from escalations.incidents import services as incident_services
from escalations.models import Incident, SlackInboundRequest, SlackIncidentMessage, TimelineEvent
from escalations.slack import publish, services
from escalations.slack.client import SlackError, SlackRateLimited
from portal.models import ContactMethod
from tests.escalations.slack_helpers import click, slack_post
from tests.factories import (
    T0,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
    MembershipFactory,
    RotationEraFactory,
    RotationFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """Tasks the Slack room publishes, recorded instead of sent to the broker."""
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(publish, "_publish", lambda name, args: sent.append((name, args)))
    monkeypatch.setattr(
        publish, "interaction_enqueue", lambda *, request_id: sent.append(("interaction", [request_id])) or True
    )
    return sent


@pytest.fixture
def world(fake_slack):
    team = TeamFactory(name="Payments", slug="payments", slack_channel_id="C0PAYMENTS")
    policy = EscalationPolicyFactory(team=team)
    EscalationTargetFactory(step=EscalationStepFactory(policy=policy, order=0), kind="position", position="primary")
    team.escalation_policy = policy
    team.save()
    engineer = MembershipFactory(team=team, role="engineer").user
    viewer = MembershipFactory(team=team, role="viewer").user
    outsider = MembershipFactory(team=TeamFactory(), role="manager").user
    for slack_id, user in (("U0ENG", engineer), ("U0VIEW", viewer), ("U0OUT", outsider)):
        fake_slack.add_user(slack_id, user.email)
    return {"team": team, "engineer": engineer, "viewer": viewer, "outsider": outsider}


def _open(team, django_capture_on_commit_callbacks, title="Checkout errors") -> Incident:
    with django_capture_on_commit_callbacks(execute=True):
        return incident_services.incident_trigger(team=team, title=title).incident


def _sync(incident: Incident) -> str:
    return services.incident_message_sync(incident_id=incident.pk, now=time_now())


def time_now():
    from django.utils import timezone

    return timezone.now()


def _actions(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_one_message_per_incident_updated_in_place(world, fake_slack, published, django_capture_on_commit_callbacks):
    incident = _open(world["team"], django_capture_on_commit_callbacks)
    assert (publish.INCIDENT_MESSAGE_SYNC, [incident.pk]) in published
    assert _sync(incident) == "posted"
    [message] = fake_slack.messages("C0PAYMENTS")
    assert f"#{incident.pk}" in message["text"] and "Checkout errors" in message["text"]
    assert _actions(message) == ["incident_acknowledge", "incident_escalate", "incident_resolve"]

    incident_services.incident_acknowledge(incident=incident, by=world["engineer"], via="web")
    assert _sync(incident) == "updated"
    [message] = fake_slack.messages("C0PAYMENTS")
    assert f"Acknowledged by {world['engineer'].display_name}" in message["text"]
    assert _actions(message) == ["incident_escalate", "incident_resolve"]
    assert _sync(incident) == "unchanged"

    incident_services.incident_resolve(incident=incident, by=world["engineer"], via="web")
    assert _sync(incident) == "updated"
    [message] = fake_slack.messages("C0PAYMENTS")
    assert "Resolved by" in message["text"] and _actions(message) == []
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert len(fake_slack.calls_to("chat.update")) == 2
    assert SlackIncidentMessage.objects.get(incident=incident).ts == message["ts"]


def test_a_sync_finding_the_lease_held_is_rendered_by_the_holder(world, fake_slack, published):
    incident = incident_services.incident_trigger(team=world["team"], title="Disk full").incident
    assert _sync(incident) == "posted"
    now = time_now()
    incident_services.incident_acknowledge(incident=incident, by=world["engineer"], via="web")
    lease = services._lease_take(incident.pk, now)  # a sync in flight with the acknowledged state
    assert not isinstance(lease, str)
    incident_services.incident_resolve(incident=incident, by=world["engineer"], via="web")
    assert services.incident_message_sync(incident_id=incident.pk, now=now) == "deferred to the running sync"
    # The holder lands its (older) render, sees the row dirty and renders the newer state again.
    assert services._lease_release(incident.pk, lease, ts=lease.ts, now=now) is True
    assert services.incident_message_sync(incident_id=incident.pk, now=now) == "updated"
    [message] = fake_slack.messages("C0PAYMENTS")
    assert "Resolved by" in message["text"]


def test_a_team_without_a_channel_gets_no_message(world, fake_slack):
    team = TeamFactory()
    incident = incident_services.incident_trigger(team=team, title="Quiet").incident
    assert _sync(incident) == "team has no Slack channel"
    assert fake_slack.calls == []


def test_rate_limited_calls_wait_for_retry_after_then_go_through(world, fake_slack):
    incident = incident_services.incident_trigger(team=world["team"], title="Busy").incident
    fake_slack.rate_limit(1, retry_after=1)
    started = time.monotonic()
    assert _sync(incident) == "posted"
    assert time.monotonic() - started >= 1  # the SDK's handler slept for Retry-After
    assert [c["status"] for c in fake_slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(fake_slack.messages("C0PAYMENTS")) == 1


def test_still_rate_limited_after_the_retries_is_left_for_later(world, fake_slack, settings):
    from escalations.slack.client import _build

    settings.BACKSTOP_SLACK_RATE_LIMIT_RETRIES = 0
    _build.cache_clear()
    incident = incident_services.incident_trigger(team=world["team"], title="Busy").incident
    fake_slack.rate_limit(1, retry_after=7)
    with pytest.raises(SlackRateLimited) as raised:
        _sync(incident)
    assert raised.value.retry_after == 7
    row = SlackIncidentMessage.objects.get(incident=incident)
    assert row.lease_until is None and row.ts == ""
    assert _sync(incident) == "posted"  # the task's retry
    assert len(fake_slack.messages("C0PAYMENTS")) == 1


# --------------------------------------------------------------------------------- buttons


def _handle(published) -> list[str]:
    return [
        services.interaction_handle(request_id=args[0], now=time_now())
        for name, args in published
        if name == "interaction"
    ]


def test_button_acknowledges_exactly_once_when_slack_retries(world, fake_slack, published):
    incident = incident_services.incident_trigger(team=world["team"], title="Checkout errors").incident
    assert _sync(incident) == "posted"
    client = Client()
    assert click(client, incident_id=incident.pk, slack_user="U0ENG").status_code == 200
    assert click(client, incident_id=incident.pk, slack_user="U0ENG", retry=1).status_code == 200
    assert click(client, incident_id=incident.pk, slack_user="U0ENG", retry=2).status_code == 200
    assert _handle(published) == ["acknowledge"]
    # The task redelivered (acks_late) finds the click worked.
    row = SlackInboundRequest.objects.get()
    assert services.interaction_handle(request_id=row.pk, now=time_now()) == "already handled"

    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.acknowledged_by == world["engineer"]
    [event] = TimelineEvent.objects.filter(incident=incident, kind=TimelineEvent.Kind.ACKNOWLEDGED)
    assert event.via == TimelineEvent.Via.SLACK and event.actor == world["engineer"]
    assert event.message == f"Acknowledged by {world['engineer'].display_name} via Slack."
    assert _sync(incident) == "updated"
    [message] = fake_slack.messages("C0PAYMENTS")
    assert f"Acknowledged by {world['engineer'].display_name}" in message["text"]
    assert "incident_acknowledge" not in _actions(message)
    assert fake_slack.ephemerals == []


def test_a_replayed_request_is_refused(world, fake_slack, published):
    incident = incident_services.incident_trigger(team=world["team"], title="x").incident
    client = Client()
    assert click(client, incident_id=incident.pk, slack_user="U0ENG").status_code == 200
    assert click(client, incident_id=incident.pk, slack_user="U0ENG").status_code == 401
    assert len(published) == 1


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "stale", "future", "unsigned"],
)
def test_forged_or_stale_requests_are_refused_and_nothing_is_stored(world, fake_slack, published, how):
    incident = incident_services.incident_trigger(team=world["team"], title="x").incident
    client = Client()
    now = int(time.time())
    if how == "unsigned":
        response = client.post("/slack/interactivity/", data={"payload": "{}"})
    else:
        kw = {
            "wrong secret": {"secret": "not-the-secret"},
            "stale": {"timestamp": now - 6 * 60},
            "future": {"timestamp": now + 6 * 60},
        }[how]
        response = click(client, incident_id=incident.pk, slack_user="U0ENG", **kw)
    assert response.status_code == 401
    assert not SlackInboundRequest.objects.exists() and published == []
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_a_tampered_body_fails_its_signature(world, fake_slack, published):
    from tests.escalations.slack_helpers import SLACK_SECRET
    from tests.fakes.fake_slack import sign

    ts = int(time.time())
    headers = {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(SLACK_SECRET, "payload=%7B%7D", ts)}
    response = Client().post(
        "/slack/interactivity/",
        data="payload=%7B%22a%22%7D",
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("slack_user", "expected", "text"),
    [
        ("U0VIEW", "refused", "You may not work incidents of Payments."),
        ("U0OUT", "refused", "You may not work incidents of Payments."),
        ("U0NOBODY", "unknown person", "not linked to a Backstop person"),
    ],
)
def test_people_without_rights_are_refused_with_an_ephemeral_message(
    world, fake_slack, published, slack_user, expected, text
):
    incident = incident_services.incident_trigger(team=world["team"], title="x").incident
    assert click(Client(), incident_id=incident.pk, slack_user=slack_user).status_code == 200
    assert _handle(published) == [expected]
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED
    assert not TimelineEvent.objects.filter(incident=incident, kind=TimelineEvent.Kind.ACKNOWLEDGED).exists()
    [reply] = fake_slack.ephemerals
    assert reply["user"] == slack_user and text in reply["text"]


def test_escalate_and_resolve_buttons(world, fake_slack, published):
    incident = incident_services.incident_trigger(team=world["team"], title="x").incident
    client = Client()
    click(client, incident_id=incident.pk, slack_user="U0ENG", action="incident_escalate", trigger="t-e")
    click(client, incident_id=incident.pk, slack_user="U0ENG", action="incident_resolve", trigger="t-r")
    click(client, incident_id=incident.pk, slack_user="U0ENG", action="incident_acknowledge", trigger="t-a")
    assert _handle(published) == ["escalate", "resolve", "no change"]
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.resolved_by == world["engineer"]
    assert "already resolved" in fake_slack.ephemerals[-1]["text"]


def test_without_slack_configured_everything_is_inert(db, settings, django_capture_on_commit_callbacks, monkeypatch):
    settings.BACKSTOP_SLACK_BOT_TOKEN = ""
    sent = []
    monkeypatch.setattr(publish, "_publish", lambda name, args: sent.append(name))
    team = TeamFactory(slack_channel_id="C0PAYMENTS")
    incident = _open(team, django_capture_on_commit_callbacks)
    incident_services.incident_acknowledge(incident=incident, by=None, via="web")
    assert sent == []
    assert click(Client(), incident_id=incident.pk, slack_user="U0ENG").status_code == 404
    assert services.incident_message_sync(incident_id=incident.pk, now=T0) == "Slack not configured"


# --------------------------------------------------------------------------------- /oncall


def _rostered(world):
    team = world["team"]
    rotation = RotationFactory(team=team, positions=["primary"])
    other = MembershipFactory(team=team, role="engineer").user
    RotationEraFactory(rotation=rotation, participants=[world["engineer"], other])
    return other


def test_oncall_answers_who_is_on_call_now_and_next(world, fake_slack):
    other = _rostered(world)
    ContactMethod.objects.create(user=other, kind="slack", value="U0OTHER", verified_at=T0)
    fake_slack.add_user("U0OTHER", other.email)
    response = slack_post(
        Client(),
        "/slack/commands/",
        {"command": "/oncall", "text": "payments", "user_id": "U0VIEW", "channel_id": "C0X", "trigger_id": "c-1"},
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    lines = answer["text"].splitlines()
    assert lines[0] == "*Payments*"
    # Weekly from Monday 2026-01-05 09:00 Berlin: whoever holds it now, the other one is next.
    from rotations.selectors import team_oncall_get

    [shift] = team_oncall_get(team=world["team"], at=time_now())["primary"]
    now_name = "<@U0OTHER>" if shift.user_id == other.pk else world["engineer"].display_name
    next_name = world["engineer"].display_name if shift.user_id == other.pk else "<@U0OTHER>"
    assert lines[1].startswith(f"• Primary: {now_name} — next: {next_name} from <!date^")


def test_oncall_in_the_team_channel_needs_no_team_name(world, fake_slack):
    _rostered(world)
    response = slack_post(
        Client(),
        "/slack/commands/",
        {"command": "/oncall", "text": "", "user_id": "U0ENG", "channel_id": "C0PAYMENTS", "trigger_id": "c-2"},
    )
    assert response.json()["text"].startswith("*Payments*\n• Primary: ")


def test_oncall_refuses_people_of_another_team_and_strangers(world, fake_slack):
    _rostered(world)
    for user, expected in (("U0OUT", "You may not see the roster of Payments."), ("U0NOBODY", "not linked")):
        response = slack_post(
            Client(),
            "/slack/commands/",
            {"command": "/oncall", "text": "payments", "user_id": user, "trigger_id": f"c-{user}"},
        )
        assert expected in response.json()["text"]
        assert "Primary" not in response.json()["text"]


def test_oncall_stale_request_is_refused(world, fake_slack):
    response = slack_post(
        Client(),
        "/slack/commands/",
        {"command": "/oncall", "user_id": "U0ENG", "trigger_id": "c-3"},
        timestamp=int(time.time()) - 600,
    )
    assert response.status_code == 401


# ----------------------------------------------------------------------------- user groups


def test_usergroup_is_set_to_the_people_on_call(world, fake_slack):
    other = _rostered(world)
    fake_slack.add_user("U0OTHER", other.email)
    team = world["team"]
    team.slack_usergroup_id = "S0ONCALL"
    team.save()
    from rotations.selectors import team_oncall_get

    now = time_now()
    [shift] = team_oncall_get(team=team, at=now)["primary"]
    expected = "U0OTHER" if shift.user_id == other.pk else "U0ENG"
    assert services.oncall_usergroup_sync(team_id=team.pk, now=now) == expected
    assert fake_slack.usergroups == {"S0ONCALL": [expected]}


def test_the_usergroup_follows_the_roster_at_each_handoff(
    world, fake_slack, published, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from rotations.handover import handovers_run
    from rotations.selectors import team_oncall_get

    other = _rostered(world)
    fake_slack.add_user("U0OTHER", other.email)
    team = world["team"]
    team.slack_usergroup_id = "S0ONCALL"
    team.save()
    now = time_now()
    # The first run records the handoffs of the last days; each one publishes the team's sync.
    with django_capture_on_commit_callbacks(execute=True):
        result = handovers_run(now=now, lookback=timedelta(days=8))
    assert result.recorded >= 1
    syncs = [args for name, args in published if name == publish.ONCALL_USERGROUP_SYNC]
    assert syncs and all(args == [team.pk] for args in syncs)
    for args in syncs:  # what the worker runs
        services.oncall_usergroup_sync(team_id=args[0], now=now)
    [shift] = team_oncall_get(team=team, at=now)["primary"]
    assert fake_slack.usergroups == {"S0ONCALL": ["U0OTHER" if shift.user_id == other.pk else "U0ENG"]}
    # Nothing changes hands on the next run: no new sync.
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        handovers_run(now=now + timedelta(minutes=1))
    assert [n for n, _ in published if n == publish.ONCALL_USERGROUP_SYNC] == []


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[1, 2]",
        '{"type": "block_actions", "trigger_id": "t", "user": "U0ENG", "actions": []}',
        '{"type": "block_actions", "trigger_id": "t", "user": {"id": "U0ENG"}, "actions": "incident_acknowledge"}',
        '{"type": "block_actions", "user": {"id": "U0ENG"}, "actions": [{"action_id": "incident_acknowledge"}]}',
    ],
)
def test_a_signed_but_malformed_payload_is_a_400_and_nothing_is_stored(world, fake_slack, published, payload):
    response = slack_post(Client(), "/slack/interactivity/", {"payload": payload})
    assert response.status_code == 400
    assert not SlackInboundRequest.objects.exists() and published == []


def test_a_click_naming_no_incident_is_answered_not_acted_on(world, fake_slack, published):
    click(Client(), incident_id=10**12, slack_user="U0ENG")
    assert _handle(published) == ["no such incident"]
    assert "does not exist" in fake_slack.ephemerals[0]["text"]


def test_a_deferred_sync_looks_again_after_the_lease(world, fake_slack, monkeypatch):
    from escalations.slack import tasks

    later = []
    monkeypatch.setattr(tasks.incident_message_sync, "apply_async", lambda **kw: later.append(kw))
    incident = incident_services.incident_trigger(team=world["team"], title="x").incident
    lease = services._lease_take(incident.pk, time_now())
    assert not isinstance(lease, str)
    assert tasks.incident_message_sync.run(incident.pk) == services.DEFERRED
    assert later == [{"args": [incident.pk], "countdown": services.LEASE.total_seconds() + 1}]


# --------------------------------------------------------------- a post whose ts was never stored


def test_a_worker_killed_after_posting_leaves_one_message(world, fake_slack):
    from escalations.slack.client import slack_call, slack_client

    incident = incident_services.incident_trigger(team=world["team"], title="Killed mid-post").incident
    t0 = time_now()
    lease = services._lease_take(incident.pk, t0)
    assert not isinstance(lease, str) and lease.look_since is None  # nothing tried before: no lookup
    # The worker posts, then dies before it stores the ts: the row keeps its lease and posting_since.
    posted = slack_call(slack_client().chat_postMessage, channel=lease.channel_id, text=lease.text, blocks=lease.blocks)
    assert SlackIncidentMessage.objects.get(incident=incident).posting_since == t0

    later = t0 + services.LEASE + timedelta(seconds=1)
    assert services.incident_message_sync(incident_id=incident.pk, now=later) == "found"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1 and len(fake_slack.calls_to("conversations.history")) == 1
    [message] = fake_slack.messages("C0PAYMENTS")
    row = SlackIncidentMessage.objects.get(incident=incident)
    assert row.ts == posted["ts"] == message["ts"] and row.posting_since is None and row.lease_token == ""

    incident_services.incident_acknowledge(incident=incident, by=world["engineer"], via="web")
    assert services.incident_message_sync(incident_id=incident.pk, now=later) == "updated"
    assert len(fake_slack.calls_to("conversations.history")) == 1  # the ts is known: no more lookups
    assert "Acknowledged by" in fake_slack.messages("C0PAYMENTS")[0]["text"]


def test_a_post_whose_answer_timed_out_is_found_not_posted_again(world, fake_slack):
    incident = incident_services.incident_trigger(team=world["team"], title="Slow Slack").incident
    fake_slack.hang_next("chat.postMessage", 2.0)  # Slack posts it, the answer comes after our 1 s timeout
    with pytest.raises(SlackError):  # no answer in time: the task would retry
        _sync(incident)
    assert len(fake_slack.messages("C0PAYMENTS")) == 1
    assert SlackIncidentMessage.objects.get(incident=incident).ts == ""

    assert _sync(incident) == "found"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1 and len(fake_slack.messages("C0PAYMENTS")) == 1


def test_a_lookup_that_finds_nothing_posts_once_and_a_quote_is_not_adopted(world, fake_slack):
    from escalations.slack.client import slack_call, slack_client

    incident = incident_services.incident_trigger(team=world["team"], title="Died before posting").incident
    t0 = time_now()
    assert not isinstance(services._lease_take(incident.pk, t0), str)  # the worker died before the call
    # Someone pastes the incident's text into the channel: same text, but not the app's message.
    slack_call(slack_client().chat_postMessage, channel="C0PAYMENTS", text=f"Backstop #{incident.pk} [Payments] fyi")

    later = t0 + services.LEASE + timedelta(seconds=1)
    assert services.incident_message_sync(incident_id=incident.pk, now=later) == "posted"
    assert len(fake_slack.calls_to("conversations.history")) == 1
    assert len(fake_slack.messages("C0PAYMENTS")) == 2  # the quote and the app's one message
    assert SlackIncidentMessage.objects.get(incident=incident).ts == fake_slack.messages("C0PAYMENTS")[1]["ts"]


def test_a_refused_post_leaves_nothing_to_look_for(world, fake_slack):
    team = TeamFactory(slack_channel_id="X0NOTACHANNEL")  # the fake refuses it: channel_not_found
    incident = incident_services.incident_trigger(team=team, title="Nowhere").incident
    assert _sync(incident) == "refused: channel_not_found"
    row = SlackIncidentMessage.objects.get(incident=incident)
    assert row.posting_since is None and "channel_not_found" in row.error
