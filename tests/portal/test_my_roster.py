"""My schedule: changing and cancelling one's own time off and overrides (portal.views.my_roster)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rotations.models import AuditEntry, Exclusion, Override
from tests.factories import ExclusionFactory, MembershipFactory, OverrideFactory, RotationEraFactory, RotationFactory

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
    return (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)


def test_schedule_lists_time_off_and_overrides_with_change_and_cancel(login, role_users, rota, soon):
    engineer, manager = role_users["engineer"], role_users["manager"]
    x = ExclusionFactory(user=engineer, start=soon, end=soon + timedelta(days=1))
    mine = OverrideFactory(rotation=rota, user=engineer, start=soon, end=soon + timedelta(hours=2))
    # Someone taking the engineer's shifts is an override the engineer takes part in, too.
    theirs = OverrideFactory(
        rotation=rota, user=manager, replaces_user=engineer, position="", start=soon, end=soon + timedelta(hours=3)
    )
    body = login(engineer).get(reverse("portal:schedule")).content.decode()
    for url in (
        reverse("portal:exclusion_edit", args=[x.pk]),
        reverse("portal:exclusion_cancel", args=[x.pk]),
        reverse("portal:override_edit", args=[mine.pk]),
        reverse("portal:override_cancel", args=[theirs.pk]),
    ):
        assert url in body


def test_engineer_moves_their_time_off_through_the_service(login, role_users, soon):
    engineer = role_users["engineer"]
    x = ExclusionFactory(user=engineer, start=soon, end=soon + timedelta(days=1))
    client = login(engineer)
    page = client.get(reverse("portal:exclusion_edit", args=[x.pk]))
    assert page.status_code == 200 and _local(x.start) in page.content.decode()
    response = client.post(
        reverse("portal:exclusion_edit", args=[x.pk]),
        {"kind": "sick", "start": _local(soon), "end": _local(soon + timedelta(days=3)), "reason": "flu"},
    )
    assert response.status_code == 302
    x.refresh_from_db()
    assert (x.kind, x.end, x.reason) == ("sick", soon + timedelta(days=3), "flu")
    assert AuditEntry.objects.filter(action=AuditEntry.Action.UPDATE, object_id=str(x.pk), actor=engineer).exists()


@pytest.mark.parametrize(
    "data, error",
    [
        ({"kind": "vacation", "start": "+2", "end": "+1"}, "The end must be after the start."),
        ({"kind": "holiday-in-space", "start": "+1", "end": "+2"}, "Select a valid choice."),
        ({"kind": "vacation", "start": "tomorrow", "end": "+2"}, "Enter a valid date/time."),
    ],
)
def test_bad_time_off_change_is_refused_and_nothing_changes(login, role_users, soon, data, error):
    engineer = role_users["engineer"]
    x = ExclusionFactory(user=engineer, start=soon, end=soon + timedelta(days=1), reason="keep")
    days = {k: _local(soon + timedelta(days=int(v))) if v.startswith("+") else v for k, v in data.items()}
    days["kind"] = data["kind"]
    response = login(engineer).post(reverse("portal:exclusion_edit", args=[x.pk]), days)
    assert response.status_code == 400 and error in response.content.decode()
    before = (x.kind, x.start, x.end, x.reason)
    x.refresh_from_db()
    assert (x.kind, x.start, x.end, x.reason) == before
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.UPDATE, object_id=str(x.pk)).exists()


def test_cancel_time_off_deletes_it_with_audit(login, role_users, soon):
    engineer = role_users["engineer"]
    x = ExclusionFactory(user=engineer, start=soon, end=soon + timedelta(days=1))
    response = login(engineer).post(reverse("portal:exclusion_cancel", args=[x.pk]))
    assert response.status_code == 302
    assert not Exclusion.objects.filter(pk=x.pk).exists()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.DELETE, object_id=str(x.pk), actor=engineer).exists()
    # GET never cancels.
    y = ExclusionFactory(user=engineer, start=soon, end=soon + timedelta(days=1))
    assert login(engineer).get(reverse("portal:exclusion_cancel", args=[y.pk])).status_code == 405
    assert Exclusion.objects.filter(pk=y.pk).exists()


def test_teammates_time_off_is_not_mine_to_change(login, role_users, team, soon):
    x = ExclusionFactory(user=role_users["viewer"], start=soon, end=soon + timedelta(days=1))
    client = login(role_users["engineer"])
    assert client.post(reverse("portal:exclusion_cancel", args=[x.pk])).status_code == 403
    other_team_engineer = MembershipFactory(role="engineer").user
    assert login(other_team_engineer).get(reverse("portal:exclusion_edit", args=[x.pk])).status_code == 404
    # A manager of only one of the person's teams has no say; of all of them, they do.
    both = MembershipFactory(team=team, role="engineer").user
    MembershipFactory(user=both, role="engineer")
    y = ExclusionFactory(user=both, start=soon, end=soon + timedelta(days=1))
    assert login(role_users["manager"]).post(reverse("portal:exclusion_cancel", args=[y.pk])).status_code == 403
    assert login(role_users["manager"]).post(reverse("portal:exclusion_cancel", args=[x.pk])).status_code == 302
    assert list(Exclusion.objects.filter(pk__in=[x.pk, y.pk])) == [y]


def test_engineer_shortens_their_override_and_a_clash_is_a_clear_error(login, role_users, rota, soon):
    engineer, manager = role_users["engineer"], role_users["manager"]
    mine = OverrideFactory(rotation=rota, user=engineer, start=soon, end=soon + timedelta(hours=2), reason="swap")
    OverrideFactory(rotation=rota, user=manager, start=soon + timedelta(hours=3), end=soon + timedelta(hours=5))
    client = login(engineer)
    url = reverse("portal:override_edit", args=[mine.pk])
    response = client.post(url, {"start": _local(soon), "end": _local(soon + timedelta(hours=1)), "reason": "short"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.end, mine.reason) == (soon + timedelta(hours=1), "short")
    # Growing it over the manager's hold of the same position: refused, named, unchanged.
    response = client.post(url, {"start": _local(soon), "end": _local(soon + timedelta(hours=4)), "reason": "x"})
    assert response.status_code == 400 and "already holds primary" in response.content.decode()
    mine.refresh_from_db()
    assert (mine.end, mine.reason) == (soon + timedelta(hours=1), "short")
    response = client.post(url, {"start": _local(soon), "end": "", "reason": "x"})
    assert response.status_code == 400 and "This field is required." in response.content.decode()


def test_override_cancel_by_participant_not_by_bystander(login, role_users, rota, soon):
    engineer, manager = role_users["engineer"], role_users["manager"]
    theirs = OverrideFactory(
        rotation=rota, user=manager, replaces_user=engineer, position="", start=soon, end=soon + timedelta(hours=3)
    )
    bystander = MembershipFactory(team=rota.team, role="engineer").user
    assert login(bystander).post(reverse("portal:override_cancel", args=[theirs.pk])).status_code == 403
    assert login(role_users["viewer"]).get(reverse("portal:override_edit", args=[theirs.pk])).status_code == 403
    outsider = MembershipFactory(role="manager").user
    assert login(outsider).post(reverse("portal:override_cancel", args=[theirs.pk])).status_code == 404
    assert Override.objects.filter(pk=theirs.pk).exists()
    assert login(engineer).post(reverse("portal:override_cancel", args=[theirs.pk])).status_code == 302
    assert not Override.objects.filter(pk=theirs.pk).exists()
