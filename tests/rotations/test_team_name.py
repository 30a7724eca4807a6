"""Team names are one line: they go into e-mail subjects, SMS and spoken pages."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from escalations.delivery.channels.base import OutgoingMessage
from escalations.delivery.channels.email import EmailChannel
from rotations.admin import TeamAdminForm
from rotations.models import Team
from rotations.services import teams as services

pytestmark = pytest.mark.django_db

BAD_NAMES = ["Payments\nBcc: everyone@example.com", "Pay\rments", "Pay\tments", "Pay\x00ments"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_services_refuse_line_breaks_and_control_characters(staff, team, name):
    with pytest.raises(ValidationError) as exc:
        services.team_create(name=name, slug="x", actor=staff)
    assert "line" in exc.value.message_dict["name"][0]
    with pytest.raises(ValidationError):
        services.team_update(team=team, name=name, actor=staff)
    team.refresh_from_db()
    assert "\n" not in team.name and not Team.objects.filter(slug="x").exists()


def test_api_and_admin_answer_a_field_error(api, role_users, team):
    res = api(role_users["manager"]).patch(f"/api/v1/teams/{team.pk}/", {"name": "A\nB"}, format="json")
    assert res.status_code == 400, res.content
    assert "name" in str(res.json())
    form = TeamAdminForm(data={"name": "A\r\nB", "slug": "ab", "time_zone": "UTC"})
    assert not form.is_valid() and "name" in form.errors


def test_email_subject_with_a_line_break_still_goes_out(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    message = OutgoingMessage(
        channel="email", to="a@example.com", subject="[Backstop #1] [Pay\nments] down\r\n", body="b", kind="page"
    )
    EmailChannel().send(message)
    assert mail.outbox[-1].subject == "[Backstop #1] [Pay ments] down"
