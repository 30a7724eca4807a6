"""Policy step targets are people who can be paged: the team's engineers and managers."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from escalations.models import EscalationPolicy
from escalations.policies import services as policy_services
from escalations.policies.services import StepInput, TargetInput

pytestmark = pytest.mark.django_db


def _steps(user):
    return [StepInput(delay=timedelta(minutes=5), targets=[TargetInput(kind="user", user=user)])]


@pytest.mark.parametrize("role", ["viewer", "outsider"])
def test_a_viewer_or_outsider_is_refused_as_a_step_target(team, role_users, role):
    with pytest.raises(ValidationError) as caught:
        policy_services.policy_create(
            team=team, name="Night", steps=_steps(role_users[role]), actor=role_users["manager"]
        )
    assert "not an engineer or manager" in str(caught.value.message_dict["steps"])
    assert not EscalationPolicy.objects.filter(team=team).exists()


def test_an_inactive_engineer_is_refused_and_an_active_one_accepted(team, role_users):
    engineer = role_users["engineer"]
    engineer.is_active = False
    engineer.save(update_fields=["is_active"])
    with pytest.raises(ValidationError):
        policy_services.policy_create(team=team, name="Night", steps=_steps(engineer), actor=role_users["manager"])
    engineer.is_active = True
    engineer.save(update_fields=["is_active"])
    policy = policy_services.policy_create(team=team, name="Night", steps=_steps(engineer), actor=role_users["manager"])
    assert policy.steps.get().targets.get().user == engineer
