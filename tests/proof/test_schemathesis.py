"""Schemathesis against /api/schema/, in-process over WSGI: no 500s, and every error is JSON with a message.

The schema is loaded once at collection (it needs no database); each operation is one test. Requests
run as a staff user with a real API token. Path ids are drawn from the seeded objects as well as from
the generator, so detail/update/delete/actions reach real rows, not only 404s.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from portal.api_auth import token_generate, token_hash
from portal.models import ApiToken
from tests.factories import (
    EscalationPolicyFactory,
    ExclusionFactory,
    HeartbeatFactory,
    IncidentFactory,
    IntegrationFactory,
    MaintenanceWindowFactory,
    MembershipFactory,
    OverrideFactory,
    RotationEraFactory,
    RotationFactory,
    StaffFactory,
    TeamFactory,
)

MAX_EXAMPLES = 12

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@schemathesis.check
def errors_are_json_with_message(ctx, response, case) -> bool | None:
    """Every 4xx/5xx answers JSON carrying a human-readable `message`."""
    if response.status_code < 400:
        return None
    content_type = (
        response.headers.get("content-type", [""])[0]
        if isinstance(response.headers.get("content-type"), list)
        else response.headers.get("content-type", "")
    )
    assert "json" in content_type, f"{response.status_code} error is {content_type!r}, not JSON"
    try:
        data = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} error body is not valid JSON: {exc}") from None
    assert isinstance(data, dict) and isinstance(data.get("message"), str) and data["message"], (
        f"{response.status_code} error without a message: {data!r}"
    )
    return True


@pytest.fixture
def seeded(db):
    """A staff caller with a token, and one of each object the API serves."""
    staff = StaffFactory()
    raw = token_generate()
    ApiToken.objects.create(
        user=staff,
        name="schemathesis",
        prefix=raw[:12],
        key_hash=token_hash(raw),
        expires_at=timezone.now() + timedelta(days=1),
    )
    team = TeamFactory()
    member = MembershipFactory(team=team, role="engineer").user
    rotation = RotationFactory(team=team)
    RotationEraFactory(rotation=rotation, participants=[member])
    policy = EscalationPolicyFactory(team=team)
    objects = [
        staff,
        team,
        member,
        rotation,
        policy,
        IncidentFactory(team=team),
        IntegrationFactory(team=team),
        HeartbeatFactory(team=team),
        MaintenanceWindowFactory(team=team),
        ExclusionFactory(user=member),
        OverrideFactory(rotation=rotation, user=member),
        ApiToken.objects.get(user=staff),
    ]
    ids = sorted({obj.pk for obj in objects})
    # Requests go through the real WSGI handler, whose request_started/finished signals close the
    # database connection (it is not in autocommit inside the test transaction). django.test.Client
    # detaches that handler for the same reason; do the same here.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {raw}"}, ids
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _cases(operation):
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # an operation with nothing to make invalid (no params, no body)
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


@pytest.mark.slow
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_api_operation_never_500s_and_errors_are_json(seeded, label):
    headers, ids = seeded
    operation = OPERATIONS[label]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=_cases(operation), real_id=st.sampled_from(ids), use_real=st.booleans())
    def run(case, real_id, use_real):
        if use_real and case.path_parameters:
            for name in case.path_parameters:
                case.path_parameters[name] = real_id
        # Each example in a savepoint rolled back afterwards: every example meets the same seeded world,
        # and a database error in one request cannot poison the test transaction for the next.
        with transaction.atomic():
            try:
                case.call_and_validate(headers=headers, checks=[not_a_server_error, errors_are_json_with_message])
            finally:
                transaction.set_rollback(True)

    run()
