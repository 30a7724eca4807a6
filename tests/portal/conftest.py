import pytest
from django.test import Client

from escalations.incidents.advance import incident_advance
from escalations.incidents.services import incident_trigger
from tests.factories import (
    ContactMethodFactory,
    EscalationPolicyFactory,
    EscalationStepFactory,
    EscalationTargetFactory,
)


@pytest.fixture
def login(mfa_user):
    """A logged-in client for a user (staff get a TOTP authenticator so the MFA gate lets them in)."""

    def make(user) -> Client:
        client = Client()
        if user is not None:
            if user.is_staff:
                mfa_user(user)
            client.force_login(user)
        return client

    return make


@pytest.fixture
def policy(team, role_users):
    """Two steps: the engineer (step 1), then the manager (step 2)."""
    policy = EscalationPolicyFactory(team=team, name="Default")
    s1 = EscalationStepFactory(policy=policy, order=0)
    EscalationTargetFactory(step=s1, kind="user", position="", user=role_users["engineer"])
    s2 = EscalationStepFactory(policy=policy, order=1)
    EscalationTargetFactory(step=s2, kind="user", position="", user=role_users["manager"])
    team.escalation_policy = policy
    team.save()
    for role in ("engineer", "manager"):
        ContactMethodFactory(user=role_users[role])
    return policy


@pytest.fixture
def incident(team, policy):
    """Opened and advanced to step 1 (on_commit never fires inside a test transaction: advance by hand)."""
    incident = incident_trigger(
        team=team,
        title="Checkout is down",
        source="alert",
        payload={"labels": {"alertname": "CheckoutDown"}, "annotations": {"runbook": "https://x"}},
    ).incident
    incident_advance(incident_id=incident.pk)
    incident.refresh_from_db()
    return incident
