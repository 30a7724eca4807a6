"""Swap consent: the colleague hears of a request (e-mail with one-click links, SMS with a reply code)
and answers from either; the requester hears the answer; giving a shift away needs the taker's consent
(portal override form and API), and swaps are in the API."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from config.celery import app
from escalations.delivery.sms_replies import sms_reply_handle, sms_reply_parse
from escalations.models import OutboxMessage
from rotations.models import Override, SwapRequest
from rotations.services import swaps
from tests.escalations.api_helpers import api_client
from tests.factories import ContactMethodFactory, MembershipFactory, RotationEraFactory, RotationFactory

pytestmark = pytest.mark.django_db

TAKER_SMS = "+15550407001"


@pytest.fixture
def eager(settings):
    """Run published tasks in-process (the real task code, no broker); SMS land in the console outbox."""
    settings.TWILIO_ACCOUNT_SID = ""
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = False, False


@pytest.fixture
def rota(team, role_users):
    rotation = RotationFactory(team=team, name="Main", positions=["primary"])
    RotationEraFactory(rotation=rotation, participants=[role_users["engineer"], role_users["manager"]])
    ContactMethodFactory(user=role_users["manager"], kind="sms", value=TAKER_SMS)
    return rotation


@pytest.fixture
def soon():
    return (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _ask(role_users, rota, soon) -> SwapRequest:
    return swaps.swap_request_create(
        rotation=rota,
        requester=role_users["engineer"],
        taker=role_users["manager"],
        start=soon,
        end=soon + timedelta(days=1),
        reason="wedding",
        now=timezone.now(),
    )


def _sms_to(number: str) -> list[str]:
    return list(OutboxMessage.objects.filter(to=number, channel="sms").order_by("pk").values_list("body", flat=True))


def _link(mail_body: str, word: str) -> str:
    line = next(li for li in mail_body.splitlines() if li.startswith(f"{word}: "))
    return line.split(": ", 1)[1].replace(settings.PUBLIC_BASE_URL, "")


# --------------------------------------------------------------------------- (a) notices and answers


def test_the_colleague_is_told_after_commit_and_answers_by_sms(
    eager, role_users, rota, soon, login, django_capture_on_commit_callbacks
):
    engineer, manager = role_users["engineer"], role_users["manager"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        swap = _ask(role_users, rota, soon)
    # Nothing leaves inside the transaction: the notice is published after commit.
    assert mail.outbox == [] and _sms_to(TAKER_SMS) == [] and len(callbacks) == 1
    callbacks[0]()
    [email] = mail.outbox
    assert email.to == [manager.email] and f"swap #{swap.pk}" in email.subject
    assert "Accept: http" in email.body and "Decline: http" in email.body
    [sms] = _sms_to(TAKER_SMS)
    assert f"YES {swap.pk}" in sms and f"NO {swap.pk}" in sms
    mail.outbox.clear()
    # The requester cannot answer by SMS on the colleague's behalf (nor learn more than "no such request").
    engineer_sms = ContactMethodFactory(user=engineer, kind="sms", value="+15550407002").value
    reply = sms_reply_handle(from_number=engineer_sms, body=f"YES {swap.pk}", now=timezone.now())
    assert "no swap request" in reply
    swap.refresh_from_db()
    assert swap.status == "pending" and not Override.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        reply = sms_reply_handle(from_number=TAKER_SMS, body=f"yes {swap.pk}", now=timezone.now())
    assert "accepted" in reply
    swap.refresh_from_db()
    override = Override.objects.get()
    assert swap.status == "accepted" and swap.override == override and override.user == manager
    # The requester is told the answer.
    [told] = mail.outbox
    assert told.to == [engineer.email] and "accepted" in told.subject
    # Answered once: a second YES changes nothing.
    again = sms_reply_handle(from_number=TAKER_SMS, body=f"YES {swap.pk}", now=timezone.now())
    assert "accepted already" in again and Override.objects.count() == 1


def test_sms_no_declines_and_bare_yes_stays_start(eager, role_users, rota, soon, django_capture_on_commit_callbacks):
    swap = _ask(role_users, rota, soon)
    with django_capture_on_commit_callbacks(execute=True):
        assert "declined" in sms_reply_handle(from_number=TAKER_SMS, body=f"NO {swap.pk}", now=timezone.now())
    swap.refresh_from_db()
    assert swap.status == "declined" and not Override.objects.exists()
    assert "declined" in mail.outbox[-1].subject and mail.outbox[-1].to == [role_users["engineer"].email]
    assert sms_reply_parse("YES").action == "start"
    assert (sms_reply_parse("yes 12").action, sms_reply_parse("yes 12").swap_id) == ("swap_accept", 12)
    assert (sms_reply_parse("12 no").action, sms_reply_parse("12 no").swap_id) == ("swap_decline", 12)
    assert sms_reply_parse("12A").action == "acknowledge"  # incident replies unchanged


def test_email_link_get_confirms_post_answers_once(
    eager, role_users, rota, soon, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        swap = _ask(role_users, rota, soon)
    url = _link(mail.outbox[0].body, "Accept")
    assert url.startswith("/schedule/swaps/answer/")
    page = client.get(url)
    assert page.status_code == 200 and b"Accept swap" in page.content
    swap.refresh_from_db()
    assert swap.status == "pending"  # a mail scanner's GET answers nothing
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 200
    swap.refresh_from_db()
    assert swap.status == "accepted" and Override.objects.get().user == role_users["manager"]
    # Single use: the same link, or the decline link, is refused now.
    assert client.post(url).status_code == 410
    decline = client.post(_link(mail.outbox[0].body, "Decline"))
    assert decline.status_code == 410 and b"accepted already" in decline.content
    assert Override.objects.count() == 1


def test_email_link_refuses_tampered_foreign_and_expired_tokens(eager, role_users, rota, soon, client):
    swap = _ask(role_users, rota, soon)
    forged = signing.dumps({"s": swap.pk, "u": role_users["engineer"].pk, "a": "accept"}, salt=swaps.LINK_SALT)
    other_salt = signing.dumps({"s": swap.pk, "u": swap.taker_id, "a": "accept"}, salt="something-else")
    for token in (forged, other_salt, "garbage"):
        assert client.post(reverse("portal:swap_answer", args=[token])).status_code == 410
    url = swaps.swap_answer_url(swap=swap, action="accept").replace(settings.PUBLIC_BASE_URL, "")
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.BACKSTOP_SWAP_LINK_MAX_AGE + 5)):
        response = client.post(url)
    assert response.status_code == 410 and b"expired" in response.content
    swap.refresh_from_db()
    assert swap.status == "pending" and not Override.objects.exists()


def test_withdrawing_tells_the_colleague(eager, role_users, rota, soon, django_capture_on_commit_callbacks):
    swap = _ask(role_users, rota, soon)
    with django_capture_on_commit_callbacks(execute=True):
        swaps.swap_request_cancel(swap_id=swap.pk, actor=role_users["engineer"], now=timezone.now())
    assert [m.to for m in mail.outbox] == [[role_users["manager"].email]]
    assert "withdrew" in mail.outbox[0].subject
    # A redelivered task sends nothing twice.
    assert swaps.swap_notice_send(swap_id=swap.pk, event=swaps.EVENT_WITHDRAWN) == []


# --------------------------------------------------------------------------- (b) consent for overrides


def _override_form(client, rota, taker, replaced, soon):
    data = {
        "rotation": rota.pk,
        "taker": taker.pk,
        "replaces_user": replaced.pk,
        "start": _local(soon),
        "end": _local(soon + timedelta(hours=6)),
    }
    return client.post(reverse("portal:override_create"), data)


def test_portal_override_naming_another_taker_becomes_a_swap_request(role_users, rota, soon, login):
    engineer, manager = role_users["engineer"], role_users["manager"]
    assert _override_form(login(engineer), rota, manager, engineer, soon).status_code == 302
    assert not Override.objects.exists()
    swap = SwapRequest.objects.get()
    assert (swap.requester, swap.taker, swap.status) == (engineer, manager, "pending")
    assert swap.end - swap.start == timedelta(hours=6)
    # The manager runs the roster: assigning directly still makes the override.
    assert _override_form(login(manager), rota, engineer, manager, soon + timedelta(days=2)).status_code == 302
    assert Override.objects.get().user == engineer


def test_api_refuses_an_engineers_override_for_another_taker(role_users, rota, soon):
    engineer, manager = role_users["engineer"], role_users["manager"]
    body = {
        "rotation": rota.pk,
        "user": manager.pk,
        "replaces_user": engineer.pk,
        "start": soon.isoformat(),
        "end": (soon + timedelta(hours=6)).isoformat(),
    }
    response = api_client(engineer).post("/api/v1/overrides/", body, format="json")
    assert response.status_code == 400, response.content
    assert "/api/v1/swaps/" in response.json()["errors"][0]["message"]
    assert not Override.objects.exists() and not SwapRequest.objects.exists()
    # Taking a shift oneself is still direct; moving it to someone else afterwards is refused too.
    own = api_client(engineer).post(
        "/api/v1/overrides/", body | {"user": engineer.pk, "replaces_user": manager.pk}, format="json"
    )
    assert own.status_code == 201, own.content
    # Handing an override one is replaced in over to yet another person needs that person's consent too.
    colleague = MembershipFactory(team=rota.team, role="engineer").user
    theirs = api_client(manager).post(
        "/api/v1/overrides/",
        body
        | {
            "user": colleague.pk,
            "start": (soon + timedelta(days=1)).isoformat(),
            "end": (soon + timedelta(days=1, hours=6)).isoformat(),
        },
        format="json",
    )
    assert theirs.status_code == 201, theirs.content
    moved = api_client(engineer).patch(f"/api/v1/overrides/{theirs.json()['id']}/", {"user": manager.pk}, format="json")
    assert moved.status_code == 400, moved.content
    assert Override.objects.get(pk=theirs.json()["id"]).user == colleague
    assert api_client(manager).post("/api/v1/overrides/", body, format="json").status_code == 201


# --------------------------------------------------------------------------- (c) swaps in the API


def test_api_swaps_create_list_accept_decline_withdraw(role_users, rota, soon, team):
    engineer, manager = role_users["engineer"], role_users["manager"]
    body = {
        "rotation": rota.pk,
        "taker": manager.pk,
        "start": soon.isoformat(),
        "end": (soon + timedelta(days=1)).isoformat(),
        "reason": "wedding",
    }
    created = api_client(engineer).post("/api/v1/swaps/", body, format="json")
    assert created.status_code == 201, created.content
    swap_id = created.json()["id"]
    assert created.json()["status"] == "pending" and created.json()["requester"] == engineer.pk
    assert [s["id"] for s in api_client(manager).get("/api/v1/swaps/").json()["results"]] == [swap_id]
    assert api_client(role_users["viewer"]).get(f"/api/v1/swaps/{swap_id}/").status_code == 404
    assert api_client(engineer).post(f"/api/v1/swaps/{swap_id}/accept/").status_code == 403
    accepted = api_client(manager).post(f"/api/v1/swaps/{swap_id}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert accepted.json()["override"] == Override.objects.get().pk
    late = api_client(engineer).post(f"/api/v1/swaps/{swap_id}/withdraw/")
    assert late.status_code == 400 and Override.objects.count() == 1
    second = (
        api_client(engineer)
        .post(
            "/api/v1/swaps/",
            body | {"start": (soon + timedelta(days=3)).isoformat(), "end": (soon + timedelta(days=4)).isoformat()},
            format="json",
        )
        .json()["id"]
    )
    assert api_client(manager).post(f"/api/v1/swaps/{second}/decline/").json()["status"] == "declined"
    third = (
        api_client(engineer)
        .post(
            "/api/v1/swaps/",
            body | {"start": (soon + timedelta(days=5)).isoformat(), "end": (soon + timedelta(days=6)).isoformat()},
            format="json",
        )
        .json()["id"]
    )
    assert api_client(engineer).post(f"/api/v1/swaps/{third}/withdraw/").json()["status"] == "cancelled"


def test_api_swap_ids_are_checked_against_the_team(role_users, rota, soon):
    engineer = role_users["engineer"]
    other_engineer = MembershipFactory(role="engineer").user
    other_rota = RotationFactory(team=other_engineer.memberships.get().team)
    span = {"start": soon.isoformat(), "end": (soon + timedelta(days=1)).isoformat()}
    for body, field in (
        ({"rotation": rota.pk, "taker": other_engineer.pk}, "taker"),
        ({"rotation": other_rota.pk, "taker": role_users["manager"].pk}, "rotation"),
        ({"rotation": rota.pk, "taker": role_users["viewer"].pk}, "taker"),
        ({"rotation": rota.pk, "taker": 999999}, "taker"),
    ):
        response = api_client(engineer).post("/api/v1/swaps/", body | span, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    assert not SwapRequest.objects.exists()
