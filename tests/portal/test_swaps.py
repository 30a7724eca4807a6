"""Swap requests: only the colleague's acceptance gives a shift away (rotations.services.swaps)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rotations.models import AuditEntry, Override, SwapRequest
from tests.factories import MembershipFactory, OverrideFactory, RotationEraFactory, RotationFactory

pytestmark = pytest.mark.django_db


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def rota(team, role_users):
    rotation = RotationFactory(team=team, name="Main", positions=["primary"])
    RotationEraFactory(rotation=rotation, participants=[role_users["engineer"], role_users["manager"]])
    return rotation


@pytest.fixture
def soon():
    return (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)


def _ask(client, rota, taker, soon, **extra):
    data = {"rotation": rota.pk, "taker": taker.pk, "start": _local(soon), "end": _local(soon + timedelta(days=1))}
    return client.post(reverse("portal:swap_create"), data | extra)


def test_a_swap_becomes_an_override_only_when_the_colleague_accepts(login, role_users, rota, soon):
    engineer, manager = role_users["engineer"], role_users["manager"]
    assert _ask(login(engineer), rota, manager, soon, reason="wedding").status_code == 302
    swap = SwapRequest.objects.get()
    assert (swap.requester, swap.taker, swap.status) == (engineer, manager, "pending")
    assert not Override.objects.exists()
    body = login(manager).get(reverse("portal:schedule")).content.decode()
    assert reverse("portal:swap_accept", args=[swap.pk]) in body
    # The requester cannot accept on the colleague's behalf.
    assert login(engineer).post(reverse("portal:swap_accept", args=[swap.pk])).status_code == 403
    assert login(manager).post(reverse("portal:swap_accept", args=[swap.pk])).status_code == 302
    swap.refresh_from_db()
    override = Override.objects.get()
    assert swap.status == "accepted" and swap.override == override
    assert (override.user, override.replaces_user, override.start, override.end, override.created_by) == (
        manager,
        engineer,
        swap.start,
        swap.end,
        manager,
    )
    assert AuditEntry.objects.filter(object_type__icontains="swap", action=AuditEntry.Action.UPDATE).exists()
    # Answered once: a second accept is a clear error and makes nothing.
    response = login(manager).post(reverse("portal:swap_accept", args=[swap.pk]))
    assert response.status_code == 400 and "accepted already" in response.content.decode()
    assert Override.objects.count() == 1


def test_declined_and_withdrawn_requests_change_nothing(login, role_users, rota, soon):
    engineer, manager = role_users["engineer"], role_users["manager"]
    _ask(login(engineer), rota, manager, soon)
    _ask(login(engineer), rota, manager, soon + timedelta(days=2))
    first, second = SwapRequest.objects.order_by("start")
    assert login(manager).post(reverse("portal:swap_decline", args=[first.pk])).status_code == 302
    assert login(manager).post(reverse("portal:swap_cancel", args=[second.pk])).status_code == 403
    assert login(engineer).post(reverse("portal:swap_cancel", args=[second.pk])).status_code == 302
    assert [s.status for s in SwapRequest.objects.order_by("start")] == ["declined", "cancelled"]
    assert not Override.objects.exists()
    bystander = MembershipFactory(team=rota.team, role="engineer").user
    assert login(bystander).post(reverse("portal:swap_accept", args=[first.pk])).status_code == 404


@pytest.mark.parametrize(
    "who, change, error",
    [
        ("viewer", {}, "Select a valid choice."),
        ("other_engineer", {}, "Select a valid choice."),
        ("manager", {"end": "yesterday"}, "Enter a valid date/time."),
        ("manager", {"swap_back": True}, "The end must be after the start."),
        ("engineer", {}, "Ask a colleague, not yourself."),
    ],
)
def test_bad_swap_requests_are_refused_and_nothing_is_written(login, role_users, rota, soon, who, change, error):
    engineer = role_users["engineer"]
    if who == "other_engineer":
        role_users[who] = MembershipFactory(role="engineer").user
    taker = role_users[who]
    extra = {k: v for k, v in change.items() if k != "swap_back"}
    if change.get("swap_back"):
        extra = {"start": _local(soon + timedelta(days=1)), "end": _local(soon)}
    if who == "engineer":
        # The form never offers oneself; the service refuses it all the same.
        from rotations.services.swaps import swap_request_create

        with pytest.raises(Exception, match=error):
            swap_request_create(
                rotation=rota,
                requester=engineer,
                taker=engineer,
                start=soon,
                end=soon + timedelta(hours=1),
                now=timezone.now(),
            )
    else:
        response = _ask(login(engineer), rota, taker, soon, **extra)
        assert response.status_code == 400 and error in response.content.decode()
    assert not SwapRequest.objects.exists()


def test_a_swap_the_taker_cannot_take_is_refused_when_asked(login, role_users, rota, soon):
    engineer, manager = role_users["engineer"], role_users["manager"]
    OverrideFactory(rotation=rota, user=manager, position="primary", start=soon, end=soon + timedelta(hours=2))
    response = _ask(login(engineer), rota, manager, soon)
    assert response.status_code == 400 and "already takes primary" in response.content.decode()
    assert not SwapRequest.objects.exists()
