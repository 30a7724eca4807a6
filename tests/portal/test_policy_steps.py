"""The escalation policy form's steps: added, removed and reordered in the browser, saved in that order."""

from datetime import timedelta

import pytest
from django.urls import reverse

from escalations.models import EscalationPolicy
from tests.factories import RotationFactory

pytestmark = pytest.mark.django_db


def _head(**over):
    data = {
        "name": "Default",
        "description": "",
        "repeat": "1",
        "ack_timeout_minutes": "",
        "auto_resolve_minutes": "",
        "reassign_on_handover": "on",
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "1000",
    }
    data.update(over)
    return data


def _saved(policy):
    out = []
    for step in policy.steps.order_by("order").prefetch_related("targets"):
        targets = sorted((t.kind, t.position, t.user_id) for t in step.targets.all())
        out.append((step.delay, targets))
    return out


def test_edit_page_offers_the_empty_form_and_order_fields(login, team, role_users, policy):
    body = login(role_users["manager"]).get(reverse("portal:policy_edit", args=[policy.pk])).content.decode()
    assert '<template id="step-template">' in body and "steps-__prefix__-delay_minutes" in body
    assert 'name="steps-0-ORDER"' in body and 'value="1"' in body and 'name="steps-1-DELETE"' in body
    assert "js/policy-steps.js" in body


def test_added_removed_and_reordered_steps_save_in_order(login, team, role_users, policy):
    """What the page posts after: remove step 1 (engineer), add a "whole team" step and move it first."""
    RotationFactory(team=team, positions=["primary"])
    manager, engineer = role_users["manager"], role_users["engineer"]
    data = _head(
        **{
            "steps-TOTAL_FORMS": "4",
            "steps-INITIAL_FORMS": "2",
            # existing step 1: removed
            "steps-0-delay_minutes": "5",
            "steps-0-users": str(engineer.pk),
            "steps-0-ORDER": "1",
            "steps-0-DELETE": "on",
            # existing step 2: kept, now second
            "steps-1-delay_minutes": "5",
            "steps-1-users": str(manager.pk),
            "steps-1-ORDER": "2",
            # the spare step the server rendered, removed by the script
            "steps-2-delay_minutes": "5",
            "steps-2-ORDER": "4",
            "steps-2-DELETE": "on",
            # the step added with "Add step", moved to the top
            "steps-3-delay_minutes": "3",
            "steps-3-whole_team": "on",
            "steps-3-positions": "primary",
            "steps-3-ORDER": "1",
        }
    )
    response = login(manager).post(reverse("portal:policy_edit", args=[policy.pk]), data)
    assert response.status_code == 302, response.content.decode()
    assert _saved(policy) == [
        (timedelta(minutes=3), [("position", "primary", None), ("team", "", None)]),
        (timedelta(minutes=5), [("user", "", manager.pk)]),
    ]


def test_saving_without_touching_the_steps_keeps_them(login, team, role_users, policy):
    """The steps as the edit page renders them, posted back unchanged, with only the name edited."""
    before = _saved(policy)
    engineer, manager = role_users["engineer"], role_users["manager"]
    data = _head(
        name="Renamed",
        **{
            "steps-TOTAL_FORMS": "3",
            "steps-INITIAL_FORMS": "2",
            "steps-0-delay_minutes": "5",
            "steps-0-users": str(engineer.pk),
            "steps-0-ORDER": "1",
            "steps-1-delay_minutes": "5",
            "steps-1-users": str(manager.pk),
            "steps-1-ORDER": "2",
            "steps-2-delay_minutes": "5",
            "steps-2-ORDER": "",
        },
    )
    response = login(manager).post(reverse("portal:policy_edit", args=[policy.pk]), data)
    assert response.status_code == 302, response.content.decode()
    policy.refresh_from_db()
    assert policy.name == "Renamed" and _saved(policy) == before and len(before) == 2


def test_an_added_step_left_empty_says_what_is_wrong(login, team, role_users, policy):
    manager = role_users["manager"]
    data = _head(
        **{
            "steps-TOTAL_FORMS": "2",
            "steps-INITIAL_FORMS": "0",
            "steps-0-delay_minutes": "5",
            "steps-0-managers": "on",
            "steps-0-ORDER": "1",
            "steps-1-delay_minutes": "10",
            "steps-1-ORDER": "2",
        }
    )
    response = login(manager).post(reverse("portal:policy_edit", args=[policy.pk]), data)
    assert response.status_code == 400
    assert "Step 2: Choose who this step notifies" in response.content.decode()  # the summary names the step
    assert len(_saved(policy)) == 2  # unchanged


def test_removing_every_step_is_refused_in_words(login, team, role_users, policy):
    data = _head(
        **{
            "steps-TOTAL_FORMS": "1",
            "steps-INITIAL_FORMS": "1",
            "steps-0-delay_minutes": "5",
            "steps-0-managers": "on",
            "steps-0-ORDER": "1",
            "steps-0-DELETE": "on",
        }
    )
    response = login(role_users["manager"]).post(reverse("portal:policy_edit", args=[policy.pk]), data)
    assert response.status_code == 400
    assert "Add at least one step" in response.content.decode()
    assert 'role="alert"' in response.content.decode()


def test_service_step_errors_sit_next_to_the_step_in_the_order_shown(login, team, role_users):
    RotationFactory(team=team, positions=["primary"])
    data = _head(
        name="Night",
        **{
            "steps-TOTAL_FORMS": "2",
            "steps-INITIAL_FORMS": "0",
            "steps-0-delay_minutes": "5",
            "steps-0-positions": "tertiary",
            "steps-0-ORDER": "2",
            "steps-1-delay_minutes": "5",
            "steps-1-managers": "on",
            "steps-1-ORDER": "1",
        },
    )
    response = login(role_users["manager"]).post(reverse("portal:policy_create", args=[team.slug]), data)
    assert response.status_code == 400
    body = response.content.decode()
    # Form 0 was moved to second place: the summary and its fieldset both say "step 2".
    assert "Step 2: no rotation of" in body and "tertiary" in body
    second = body.split("<span data-step-number>2</span>")[1].split("</fieldset>")[0]
    assert "no rotation of" in second and 'name="steps-0-positions"' in second
    assert not EscalationPolicy.objects.filter(team=team, name="Night").exists()
