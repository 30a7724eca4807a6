"""Roster API: the permission matrix, on-call and shifts answers, JSON field errors."""

from datetime import UTC, timedelta

import pytest

from rotations.models import AuditEntry, Exclusion, Membership, Override, Rotation
from tests.factories import ExclusionFactory, MembershipFactory, OverrideFactory, TeamFactory, UserFactory
from tests.rotations.conftest import MON

pytestmark = pytest.mark.django_db

ROLES = ["staff", "manager", "engineer", "viewer", "outsider"]


def iso(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # no "+" to escape in query strings


# --------------------------------------------------------------------------- reads


@pytest.mark.parametrize(
    "role, visible", [("staff", True), ("manager", True), ("engineer", True), ("viewer", True), ("outsider", False)]
)
def test_read_matrix(api, role_users, roster, role, visible):
    rotation, people = roster
    ExclusionFactory(user=people[0])
    OverrideFactory(rotation=rotation, user=people[1])
    client = api(role_users[role])
    for url in ("/api/v1/rotations/", "/api/v1/exclusions/", "/api/v1/overrides/", "/api/v1/teams/"):
        res = client.get(url)
        assert res.status_code == 200, url
        assert (res.json()["count"] >= 1) is visible, url
    res = client.get(f"/api/v1/oncall/?team={rotation.team.slug}&at={iso(MON)}")
    assert res.status_code == (200 if visible else 404)
    res = client.get(f"/api/v1/rotations/{rotation.pk}/")
    assert res.status_code == (200 if visible else 404)


def test_anonymous_is_refused(api, roster):
    assert api(None).get("/api/v1/rotations/").status_code in (401, 403)
    assert api(None).get("/api/v1/oncall/?team=1").status_code in (401, 403)


def test_team_members_with_roles(api, role_users, team):
    res = api(role_users["viewer"]).get(f"/api/v1/teams/{team.pk}/")
    roles = {m["user"]["id"]: m["role"] for m in res.json()["members"]}
    assert roles == {role_users[r].pk: r for r in ("manager", "engineer", "viewer")}


# --------------------------------------------------------------------------- members
# The API writes members through the same guarded services as the portal's member page.


def _members(team) -> dict[int, str]:
    return dict(Membership.objects.filter(team=team).values_list("user_id", "role"))


def test_api_adds_a_member_and_changes_their_role_with_audit(api, role_users, team):
    client, newcomer = api(role_users["manager"]), UserFactory()
    res = client.post(f"/api/v1/teams/{team.pk}/members/", {"user": newcomer.pk, "role": "viewer"}, format="json")
    assert res.status_code == 200 and res.json()["role"] == "viewer"
    res = client.post(f"/api/v1/teams/{team.pk}/members/", {"user": newcomer.pk, "role": "engineer"}, format="json")
    assert res.status_code == 200 and _members(team)[newcomer.pk] == "engineer"
    audits = AuditEntry.objects.filter(team=team, object_type="rotations.membership").order_by("id")
    assert [(a.action, a.actor_id, a.changes.get("role")) for a in audits] == [
        ("create", role_users["manager"].pk, [None, "viewer"]),
        ("update", role_users["manager"].pk, ["viewer", "engineer"]),
    ]


def test_api_refuses_to_demote_or_remove_the_last_manager(api, role_users, team):
    client, manager = api(role_users["staff"]), role_users["manager"]
    res = client.post(f"/api/v1/teams/{team.pk}/members/", {"user": manager.pk, "role": "engineer"}, format="json")
    assert res.status_code == 400 and "last manager" in res.json()["message"]
    res = client.delete(f"/api/v1/teams/{team.pk}/members/{manager.pk}/")
    assert res.status_code == 400 and "last manager" in res.json()["message"]
    assert _members(team)[manager.pk] == "manager"
    assert not AuditEntry.objects.filter(team=team, object_type="rotations.membership").exists()


def test_api_refuses_to_remove_or_make_a_viewer_of_someone_the_roster_pages(api, role_users, roster):
    rotation, people = roster
    client, team = api(role_users["manager"]), rotation.team
    res = client.delete(f"/api/v1/teams/{team.pk}/members/{people[0].pk}/")
    assert res.status_code == 400 and "rotation Payments" in res.json()["message"]
    res = client.post(f"/api/v1/teams/{team.pk}/members/", {"user": people[0].pk, "role": "viewer"}, format="json")
    assert res.status_code == 400 and "rotation Payments" in res.json()["message"]
    assert _members(team)[people[0].pk] == "engineer"


def test_api_refuses_a_deactivated_user(api, role_users, team):
    gone = UserFactory(is_active=False)
    res = api(role_users["manager"]).post(
        f"/api/v1/teams/{team.pk}/members/", {"user": gone.pk, "role": "viewer"}, format="json"
    )
    assert res.status_code == 400 and "deactivated" in res.json()["message"]
    assert gone.pk not in _members(team)


def test_api_removes_a_member_with_audit_and_404s_a_stranger(api, role_users, team):
    client = api(role_users["manager"])
    assert client.delete(f"/api/v1/teams/{team.pk}/members/{role_users['viewer'].pk}/").status_code == 204
    assert role_users["viewer"].pk not in _members(team)
    assert AuditEntry.objects.filter(team=team, object_type="rotations.membership", action="delete").count() == 1
    assert client.delete(f"/api/v1/teams/{team.pk}/members/{role_users['viewer'].pk}/").status_code == 404
    assert client.delete(f"/api/v1/teams/{team.pk}/members/{role_users['outsider'].pk}/").status_code == 404


# --------------------------------------------------------------------------- exclusions


@pytest.mark.parametrize(
    "role, own, other_member",
    [
        ("staff", 201, 201),
        ("manager", 201, 201),
        ("engineer", 201, 403),
        # Own absences are personal data: portal.permissions lets anyone record their own.
        ("viewer", 201, 403),
        ("outsider", 201, 403),
    ],
)
def test_exclusion_create_matrix(api, role_users, roster, role, own, other_member):
    _, people = roster
    client = api(role_users[role])
    body = {"start": iso(MON), "end": iso(MON + timedelta(days=2)), "kind": "vacation", "reason": "beach"}
    assert client.post("/api/v1/exclusions/", body, format="json").status_code == own
    res = client.post("/api/v1/exclusions/", {**body, "user": people[0].pk}, format="json")
    assert res.status_code == other_member


@pytest.mark.parametrize(
    "role, expected", [("staff", 204), ("manager", 204), ("engineer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_exclusion_update_delete_matrix(api, role_users, roster, role, expected):
    _, people = roster
    exclusion = ExclusionFactory(user=people[0])
    client = api(role_users[role])
    res = client.patch(f"/api/v1/exclusions/{exclusion.pk}/", {"reason": "changed"}, format="json")
    assert res.status_code == (200 if expected == 204 else expected)
    assert client.delete(f"/api/v1/exclusions/{exclusion.pk}/").status_code == expected
    assert Exclusion.objects.filter(pk=exclusion.pk).exists() is (expected != 204)


def test_engineer_updates_and_deletes_own_exclusion(api, role_users, roster):
    engineer = role_users["engineer"]
    exclusion = ExclusionFactory(user=engineer)
    client = api(engineer)
    res = client.patch(f"/api/v1/exclusions/{exclusion.pk}/", {"end": iso(MON + timedelta(days=9))}, format="json")
    assert res.status_code == 200 and res.json()["end"].startswith("2026-03-11")
    assert client.delete(f"/api/v1/exclusions/{exclusion.pk}/").status_code == 204
    assert list(AuditEntry.objects.filter(object_type="rotations.exclusion").values_list("action", flat=True)) == [
        "delete",
        "update",
    ]


def test_exclusion_errors_are_json_field_errors(api, role_users):
    res = api(role_users["engineer"]).post(
        "/api/v1/exclusions/", {"start": iso(MON), "end": iso(MON - timedelta(hours=1))}, format="json"
    )
    assert res.status_code == 400
    assert res.json()["errors"] == [{"field": "end", "message": "End must be after start."}]


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    "role, taking_part, others",
    # Staff outside the team may hand the pager around but not take it: a taker pages for the team.
    [("staff", 400, 201), ("manager", 201, 201), ("engineer", 201, 403), ("viewer", 403, 403), ("outsider", 400, 400)],
)
def test_override_create_matrix(api, role_users, roster, role, taking_part, others):
    rotation, people = roster
    client = api(role_users[role])
    body = {"rotation": rotation.pk, "start": iso(MON), "end": iso(MON + timedelta(hours=2)), "position": "primary"}
    assert client.post("/api/v1/overrides/", body, format="json").status_code == taking_part
    res = client.post(
        "/api/v1/overrides/",
        {**body, "position": "", "user": people[2].pk, "replaces_user": people[0].pk},
        format="json",
    )
    assert res.status_code == others


def test_engineer_may_not_give_away_own_shift_without_the_takers_consent(api, roster):
    rotation, people = roster
    maria, jonas = people[:2]
    res = api(maria).post(
        "/api/v1/overrides/",
        {
            "rotation": rotation.pk,
            "user": jonas.pk,
            "replaces_user": maria.pk,
            "start": iso(MON),
            "end": iso(MON + timedelta(days=1)),
            "reason": "dentist",
        },
        format="json",
    )
    # That is a swap request the taker answers (POST /api/v1/swaps/), not an override.
    assert res.status_code == 400, res.json()
    assert "/api/v1/swaps/" in res.json()["errors"][0]["message"]
    assert not Override.objects.exists()


@pytest.mark.parametrize(
    "role, expected", [("staff", 204), ("manager", 204), ("engineer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_override_delete_matrix(api, role_users, roster, role, expected):
    rotation, people = roster
    override = OverrideFactory(rotation=rotation, user=people[1])
    assert api(role_users[role]).delete(f"/api/v1/overrides/{override.pk}/").status_code == expected
    assert Override.objects.filter(pk=override.pk).exists() is (expected != 204)


def test_override_conflict_is_a_clear_field_error(api, role_users, roster):
    rotation, people = roster
    first = OverrideFactory(
        rotation=rotation, user=people[0], start=MON + timedelta(hours=1), end=MON + timedelta(hours=3)
    )
    res = api(role_users["manager"]).post(
        "/api/v1/overrides/",
        {
            "rotation": rotation.pk,
            "user": people[2].pk,
            "position": "primary",
            "start": iso(MON),
            "end": iso(MON + timedelta(hours=2)),
        },
        format="json",
    )
    assert res.status_code == 400
    assert res.json()["errors"] == [
        {
            "field": "position",
            "message": (
                f"Maria Lopez already holds primary for Payments 2026-03-02 10:00–11:00 via override #{first.pk}."
            ),
        }
    ]


# --------------------------------------------------------------------------- rotations


def _rotation_body(team, people):
    return {
        "team": team.pk,
        "name": "Checkout",
        "time_zone": "Europe/Berlin",
        "positions": ["primary"],
        "start_date": "2026-03-02",
        "handoff_time": "09:00",
        "shift_unit": "days",
        "shift_length": 1,
        "participants": [p.pk for p in people],
        "restrictions": [{"weekday": None, "start": "08:00", "end": "20:00"}],
    }


@pytest.mark.parametrize(
    "role, expected", [("staff", 201), ("manager", 201), ("engineer", 403), ("viewer", 403), ("outsider", 403)]
)
def test_rotation_create_matrix(api, role_users, roster, role, expected):
    _, people = roster
    res = api(role_users[role]).post("/api/v1/rotations/", _rotation_body(roster[0].team, people), format="json")
    assert res.status_code == expected, res.json()
    if expected == 201:
        body = res.json()
        assert body["current_era"]["restrictions"] == [{"weekday": None, "start": "08:00", "end": "20:00"}]
        assert [p["user"]["id"] for p in body["current_era"]["participants"]] == [p.pk for p in people]


@pytest.mark.parametrize(
    "role, expected", [("staff", 200), ("manager", 200), ("engineer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_rotation_update_delete_matrix(api, role_users, roster, role, expected):
    rotation, _ = roster
    client = api(role_users[role])
    res = client.patch(f"/api/v1/rotations/{rotation.pk}/", {"name": "Payments EU"}, format="json")
    assert res.status_code == expected
    res = client.post(
        f"/api/v1/rotations/{rotation.pk}/definition/",
        {"effective_from": "2030-01-01T00:00:00Z", "shift_length": 2},
        format="json",
    )
    assert res.status_code == (201 if expected == 200 else expected)
    assert client.delete(f"/api/v1/rotations/{rotation.pk}/").status_code == (204 if expected == 200 else expected)
    assert Rotation.objects.filter(pk=rotation.pk).exists() is (expected != 200)


def test_rotation_validation_errors(api, role_users, roster):
    _, people = roster
    body = {**_rotation_body(roster[0].team, people), "time_zone": "Mars/Base", "positions": ["a", "a"]}
    res = api(role_users["manager"]).post("/api/v1/rotations/", body, format="json")
    assert res.status_code == 400
    assert res.json()["errors"][0]["field"] == "time_zone"


def test_definition_change_in_past_refused_for_manager(api, role_users, roster):
    rotation, _ = roster
    res = api(role_users["manager"]).post(
        f"/api/v1/rotations/{rotation.pk}/definition/",
        {"effective_from": "2020-01-01T00:00:00Z", "shift_length": 2},
        format="json",
    )
    assert res.status_code == 400 and res.json()["errors"][0]["field"] == "effective_from"


# --------------------------------------------------------------------------- on call


def test_oncall_plain_cover_and_override(api, role_users, roster):
    rotation, people = roster
    maria, jonas, ana, tom = people
    client = api(role_users["viewer"])
    team = rotation.team

    res = client.get(f"/api/v1/oncall/?team={team.pk}&at={iso(MON + timedelta(hours=1))}").json()
    assert [(p["position"], p["user"]["name"], p["reason"], p["until"]) for p in res["positions"]] == [
        ("primary", "Maria Lopez", "rotation", "2026-03-09T08:00:00Z"),
        ("secondary", "Jonas Berg", "rotation", "2026-03-09T08:00:00Z"),
    ]

    sick = ExclusionFactory(user=maria, start=MON + timedelta(days=1), end=MON + timedelta(days=2))
    res = client.get(f"/api/v1/oncall/?team={team.slug}&at={iso(MON + timedelta(days=1, hours=1))}").json()
    primary = res["positions"][0]
    assert primary["user"]["name"] == "Ana Kim" and primary["reason"] == "cover"
    assert primary["covering"]["name"] == "Maria Lopez" and primary["exclusion_id"] == sick.pk
    assert primary["until"] == "2026-03-04T08:00:00Z"

    override = OverrideFactory(
        rotation=rotation,
        user=tom,
        position="secondary",
        start=MON + timedelta(days=1),
        end=MON + timedelta(days=1, hours=4),
    )
    res = client.get(f"/api/v1/oncall/?team={team.slug}&at={iso(MON + timedelta(days=1, hours=1))}").json()
    secondary = res["positions"][1]
    assert (secondary["user"]["name"], secondary["reason"], secondary["override_id"]) == (
        "Tom Wu",
        "override",
        override.pk,
    )
    assert secondary["covering"]["name"] == "Jonas Berg"
    assert secondary["until"] == "2026-03-03T12:00:00Z"


def test_oncall_gap_and_bad_params(api, role_users, team):
    client = api(role_users["staff"])
    assert client.get("/api/v1/oncall/").status_code == 400
    assert client.get(f"/api/v1/oncall/?team={team.pk}&at=yesterday").json()["errors"][0]["field"] == "at"
    assert client.get("/api/v1/oncall/?team=no-such-team").status_code == 404
    assert client.get(f"/api/v1/oncall/?team={team.pk}").json()["positions"] == []


# --------------------------------------------------------------------------- shifts


def test_shifts_window_validation(api, role_users, roster):
    rotation, _ = roster
    client = api(role_users["viewer"])
    base = f"/api/v1/shifts/?team={rotation.team.pk}"
    ok = client.get(f"{base}&since=2026-03-02T00:00:00Z&until=2027-03-03T00:00:00Z")
    assert ok.status_code == 200  # exactly 366 days
    too_long = client.get(f"{base}&since=2026-03-02T00:00:00Z&until=2027-03-03T00:00:01Z")
    assert too_long.status_code == 400 and too_long.json()["errors"][0]["field"] == "until"
    backwards = client.get(f"{base}&since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z")
    assert backwards.status_code == 400
    assert client.get("/api/v1/shifts/").status_code == 400


def test_shifts_by_team_and_user(api, role_users, roster):
    rotation, people = roster
    maria = people[0]
    client = api(role_users["viewer"])
    window = "since=2026-03-02T08:00:00Z&until=2026-03-16T08:00:00Z"
    team_shifts = client.get(f"/api/v1/shifts/?team={rotation.team.pk}&{window}").json()
    assert [(s["position"], s["user"]["name"]) for s in team_shifts] == [
        ("primary", "Maria Lopez"),
        ("secondary", "Jonas Berg"),
        ("primary", "Jonas Berg"),
        ("secondary", "Ana Kim"),
    ]
    mine = client.get(f"/api/v1/shifts/?user={maria.pk}&{window}").json()
    assert [(s["start"], s["position"]) for s in mine] == [("2026-03-02T08:00:00Z", "primary")]
    # An outsider cannot look at a member's shifts.
    assert api(role_users["outsider"]).get(f"/api/v1/shifts/?user={maria.pk}&{window}").status_code == 404
    assert api(role_users["outsider"]).get(f"/api/v1/shifts/?team={rotation.team.pk}&{window}").status_code == 404


def test_schema_documents_query_params(api, staff):
    res = api(staff).get("/api/schema/?format=json")
    assert res.status_code == 200
    paths = res.json()["paths"]
    assert {p["name"] for p in paths["/api/v1/oncall/"]["get"]["parameters"]} >= {"team", "at"}
    assert {p["name"] for p in paths["/api/v1/shifts/"]["get"]["parameters"]} >= {"team", "user", "since", "until"}
    assert "ends_after" in {p["name"] for p in paths["/api/v1/exclusions/"]["get"]["parameters"]}


def test_other_team_rotation_not_visible_to_manager(api, role_users, roster):
    other = TeamFactory()
    MembershipFactory(team=other, user=UserFactory())
    res = api(role_users["manager"]).post("/api/v1/rotations/", _rotation_body(other, []), format="json")
    assert res.status_code == 403
