"""Every list endpoint, found in the OpenAPI schema, refuses an out-of-range or malformed `limit`,
`offset` or id filter with a JSON 400, and every detail URL answers a huge id with 404: never a 5xx.

The seeded world has a row behind every list, because pagination only reaches SQL when there is
something to count."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from escalations.models import WebhookSubscription
from rotations.models import Membership
from tests.proof.conftest import API_ROLES

HUGE = "8243954051194522053024771102212096"
BAD_PAGING = [
    {"limit": HUGE},
    {"offset": HUGE},
    {"limit": "0"},
    {"limit": "-1"},
    {"offset": "-1"},
    {"limit": "abc"},
    {"offset": "1.5"},
    {"limit": "1e3"},
    {"limit": "1001"},
    {"offset": "9" * 5000},
]
BAD_IDS = [HUGE, "99999999999999999999", "-99999999999999999999", "0", "1.5", "1e400", "x"]

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
LIST_PATHS = sorted(
    path
    for path, ops in SCHEMA["paths"].items()
    if any(p["name"] == "limit" for p in ops.get("get", {}).get("parameters", []))
)
# Lists at a fixed path: every signed-in role may read them (scoped to its teams).
PLAIN_LIST_PATHS = {path for path in LIST_PATHS if "{" not in path}
ID_FILTERS = sorted(
    (path, p["name"])
    for path in LIST_PATHS
    for p in SCHEMA["paths"][path]["get"]["parameters"]
    if p["in"] == "query" and p["schema"].get("type") == "integer" and p["name"] not in ("limit", "offset")
)
DETAIL_PATHS = sorted(
    path for path, ops in SCHEMA["paths"].items() if "get" in ops and path.endswith("/{id}/") and path.count("{") == 1
)


def _client(headers: dict[str, str]) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=headers["Authorization"])
    return client


def _assert_json_400(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert body["error"] and body["message"] and [e["field"] for e in body["errors"]] == [field], body


def test_the_walk_covers_the_api():
    assert len(LIST_PATHS) >= 10 and len(ID_FILTERS) >= 10 and len(DETAIL_PATHS) >= 10


@pytest.mark.parametrize("role", API_ROLES)
def test_list_endpoints_refuse_bad_paging_with_400(api_world, role):
    headers, _ = api_world
    client = _client(headers[role])
    team_id = Membership.objects.filter(role="engineer").values_list("team_id", flat=True).first()
    webhook = WebhookSubscription.objects.create(
        team_id=team_id, url="https://hooks.example.com/b", events=["incident.triggered"], secret="whsec_test"
    )
    for template in LIST_PATHS:
        # A list nested under a team (its handover notes) or a webhook (its deliveries) is walked on the
        # seeded one; where the role may not read it at all (403, or 404 where the API hides it), paging
        # has nothing to refuse. Staff may read every one.
        path = template.replace("/webhooks/{id}/", f"/webhooks/{webhook.pk}/").replace("{id}", str(team_id))
        first = client.get(path, {"limit": "2", "offset": "1"})
        if first.status_code in (403, 404) and template not in PLAIN_LIST_PATHS and role != "staff":
            continue
        assert first.status_code == 200, path
        assert client.get(path, {"limit": ""}).status_code == 200, path  # empty = not given
        for params in BAD_PAGING:
            _assert_json_400(client.get(path, params), next(iter(params)))


@pytest.mark.parametrize("role", API_ROLES)
def test_id_filters_refuse_impossible_ids_with_400(api_world, role):
    headers, _ = api_world
    client = _client(headers[role])
    for path, name in ID_FILTERS:
        for value in BAD_IDS:
            _assert_json_400(client.get(path, {name: value}), name)


@pytest.mark.parametrize("role", API_ROLES)
def test_detail_endpoints_answer_huge_ids_with_404(api_world, role):
    headers, _ = api_world
    client = _client(headers[role])
    for path in DETAIL_PATHS:
        for value in (HUGE, "99999999999999999999", "0"):
            response = client.get(path.replace("{id}", value))
            assert response.status_code == 404, (path, value, response.status_code)
            assert response.json()["message"]
