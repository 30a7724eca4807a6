# Shared fixtures: the logged-in client, a team policy with an incident opened through the engine, and
# a seeded API world with a token per role for the API-wide proofs.
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.api_auth import token_generate, token_hash
from portal.models import ApiToken
from rotations.models import SwapRequest
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
from tests.portal.conftest import incident, login, policy  # noqa: F401

API_ROLES = ("staff", "engineer", "viewer")


def _bearer(user) -> dict[str, str]:
    raw = token_generate()
    ApiToken.objects.create(
        user=user,
        name="proof",
        prefix=raw[:12],
        key_hash=token_hash(raw),
        expires_at=timezone.now() + timedelta(days=1),
    )
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def api_world(db) -> tuple[dict[str, dict[str, str]], list[int]]:
    """One of each object the API serves, on a team with an engineer and a viewer; a staff user outside
    it. Returns the Authorization header per role in API_ROLES, and the ids of every seeded object."""
    staff = StaffFactory()
    team = TeamFactory()
    engineer = MembershipFactory(team=team, role="engineer").user
    viewer = MembershipFactory(team=team, role="viewer").user
    rotation = RotationFactory(team=team)
    RotationEraFactory(rotation=rotation, participants=[engineer, viewer])
    escalation_policy = EscalationPolicyFactory(team=team)
    headers = {"staff": _bearer(staff), "engineer": _bearer(engineer), "viewer": _bearer(viewer)}
    objects = [
        staff,
        team,
        engineer,
        viewer,
        rotation,
        escalation_policy,
        IncidentFactory(team=team),
        IntegrationFactory(team=team),
        HeartbeatFactory(team=team),
        MaintenanceWindowFactory(team=team),
        ExclusionFactory(user=engineer),
        OverrideFactory(rotation=rotation, user=engineer),
        SwapRequest.objects.create(
            rotation=rotation,
            requester=engineer,
            taker=viewer,
            start=timezone.now() + timedelta(days=3),
            end=timezone.now() + timedelta(days=4),
            created_at=timezone.now(),
        ),
        *ApiToken.objects.all(),
    ]
    return headers, sorted({obj.pk for obj in objects})
