"""One-click acknowledge / resolve links in paging e-mails.

The link is the credential, so it carries what it may do and for whom:

* signed with Django's signing (SECRET_KEY, a salt of its own) over the page, the incident, the paged
  person and the action, so a changed id or action is refused;
* expiring after BACKSTOP_EMAIL_LINK_MAX_AGE seconds (the signature's timestamp);
* single use: using it writes an EmailActionUse row under a unique constraint in the same transaction
  as the action, so a second click (or a replayed form) is refused as already used;
* acting only as the paged person, via "email", through the incident services, and only while that
  person may still work the team's incidents (a person removed from the team is refused).

Opening the link (GET) only shows a confirmation; the action needs the POST of that page, because mail
scanners fetch links in incoming mail and must not acknowledge anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction

from escalations.delivery.message import EMAIL_LINK_SALT as SALT
from escalations.incidents import services
from escalations.models import EmailActionUse, Incident, Page, TimelineEvent
from portal.models import User
from portal.permissions import can_work_incidents

Action = EmailActionUse.Action


class EmailLinkError(Exception):
    """The link cannot be used; the message is shown to the person as it is."""


@dataclass(frozen=True)
class EmailLink:
    page: Page
    incident: Incident
    user: User
    action: str


def email_link_get(*, token: str) -> EmailLink:
    """The link's page, incident, person and action; EmailLinkError when it is tampered with, expired,
    used, or its person may no longer act on the incident."""
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.BACKSTOP_EMAIL_LINK_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise EmailLinkError("This link has expired. Open the incident in Backstop instead.") from exc
    except signing.BadSignature as exc:
        raise EmailLinkError("This link is not valid.") from exc
    try:
        page_id, incident_id, user_id, action = int(data["p"]), int(data["i"]), int(data["u"]), str(data["a"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EmailLinkError("This link is not valid.") from exc
    if action not in Action.values:
        raise EmailLinkError("This link is not valid.")
    page = Page.objects.select_related("user").filter(pk=page_id, user_id=user_id).first()
    incident = Incident.objects.select_related("team").filter(pk=incident_id).first()
    if page is None or incident is None:
        raise EmailLinkError("This link is no longer valid: its page or incident is gone.")
    if EmailActionUse.objects.filter(page=page, incident=incident, action=action).exists():
        raise EmailLinkError("This link has already been used.")
    if not page.user.is_active or not can_work_incidents(page.user, incident.team_id):
        raise EmailLinkError(f"{page.user} may no longer act on incidents of {incident.team.name}.")
    return EmailLink(page=page, incident=incident, user=page.user, action=action)


def email_link_use(*, token: str, now: datetime) -> tuple[EmailLink, bool]:
    """Act on the link once, as its person: (the link, whether the incident changed)."""
    link = email_link_get(token=token)
    try:
        with transaction.atomic():
            EmailActionUse.objects.create(
                page=link.page, incident=link.incident, user=link.user, action=link.action, used_at=now
            )
            if link.action == Action.ACKNOWLEDGE:
                changed = services.incident_acknowledge(
                    incident=link.incident, by=link.user, via=TimelineEvent.Via.EMAIL, now=now
                )
            else:
                changed = services.incident_resolve(
                    incident=link.incident, by=link.user, via=TimelineEvent.Via.EMAIL, now=now
                )
    except IntegrityError as exc:  # a second click raced the first
        raise EmailLinkError("This link has already been used.") from exc
    link.incident.refresh_from_db()
    return link, changed
