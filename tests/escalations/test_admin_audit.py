"""Policy edits in the Django admin, including the step and target inlines, are audited."""

from datetime import timedelta

import pytest

from escalations.models import EscalationPolicy, EscalationStep
from rotations.models import AuditEntry
from tests.factories import EscalationPolicyFactory, EscalationStepFactory, StaffFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_mfa(client, mfa_user):
    admin = mfa_user(StaffFactory(is_superuser=True))
    client.force_login(admin)
    client.admin = admin
    return client


def _policy_form(policy, steps):
    data = {
        "team": policy.team_id,
        "name": policy.name,
        "description": "",
        "repeat": policy.repeat,
        "ack_timeout": "",
        "auto_resolve_after": "",
        "reassign_on_handover": "on",
        "steps-TOTAL_FORMS": len(steps),
        "steps-INITIAL_FORMS": sum(1 for s in steps if s.get("id")),
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
    }
    for i, step in enumerate(steps):
        for key, value in step.items():
            data[f"steps-{i}-{key}"] = value
        data[f"steps-{i}-policy"] = policy.pk
    return data


def test_a_step_delay_changed_in_the_policy_inline_is_audited(admin_client_mfa):
    policy = EscalationPolicyFactory(team=TeamFactory(), repeat=0)
    step = EscalationStepFactory(policy=policy, order=0, delay=timedelta(minutes=5))
    data = _policy_form(policy, [{"id": step.pk, "order": 0, "delay": "00:10:00"}])
    response = admin_client_mfa.post(f"/admin/escalations/escalationpolicy/{policy.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert EscalationStep.objects.get(pk=step.pk).delay == timedelta(minutes=10)
    entry = AuditEntry.objects.get(object_type="escalations.escalationpolicy", object_id=str(policy.pk))
    assert entry.action == AuditEntry.Action.UPDATE and entry.actor == admin_client_mfa.admin
    assert entry.changes["steps"][0][0]["delay"] == 300 and entry.changes["steps"][1][0]["delay"] == 600


def test_saving_without_changes_writes_no_audit_entry(admin_client_mfa):
    policy = EscalationPolicyFactory(team=TeamFactory(), repeat=0)
    step = EscalationStepFactory(policy=policy, order=0, delay=timedelta(minutes=5))
    data = _policy_form(policy, [{"id": step.pk, "order": 0, "delay": "00:05:00"}])
    assert admin_client_mfa.post(f"/admin/escalations/escalationpolicy/{policy.pk}/change/", data).status_code == 302
    assert not AuditEntry.objects.filter(object_type="escalations.escalationpolicy").exists()


def test_deleting_a_step_in_its_own_admin_page_is_audited(admin_client_mfa):
    policy = EscalationPolicyFactory(team=TeamFactory(), repeat=0)
    step = EscalationStepFactory(policy=policy, order=0, delay=timedelta(minutes=5))
    response = admin_client_mfa.post(f"/admin/escalations/escalationstep/{step.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    entry = AuditEntry.objects.get(object_type="escalations.escalationpolicy", object_id=str(policy.pk))
    assert entry.changes["steps"][1] == []
    assert EscalationPolicy.objects.filter(pk=policy.pk).exists()
