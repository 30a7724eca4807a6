"""The text of a page: what the person is told, per channel."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from escalations.delivery.channels import (
    OutgoingMessage,
    page_reference,
)
from escalations.models import Incident, Page

# Signs the one-click links of paging e-mails (escalations.delivery.email_links checks them).
EMAIL_LINK_SALT = "backstop.delivery.email-action"


def email_action_url(*, page_id: int, incident_id: int, user_id: int, action: str) -> str:
    """A signed link acting once, as `user_id`, on the incident (see escalations.delivery.email_links)."""
    token = signing.dumps({"p": page_id, "i": incident_id, "u": user_id, "a": action}, salt=EMAIL_LINK_SALT)
    return settings.PUBLIC_BASE_URL + reverse("email:action", args=[token])


# --- message text ------------------------------------------------------------------------------


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _email_body(carrier: Page, ordered: list[Incident], ref: str) -> str:
    """Inbound mail is not read, so no reply instructions: each incident gets signed one-click links."""
    link_base = settings.PUBLIC_BASE_URL
    if len(ordered) == 1:
        first = ordered[0]
        lines = [f"Backstop #{first.pk} [{first.team.name}] {_short(first.title, 100)}. {ref}", ""]
    else:
        lines = [f"{len(ordered)} incidents open. {ref}", ""]
    for i in ordered:
        lines += [f"#{i.pk} [{i.team.name}] {i.title}", f"  Open: {link_base}/incidents/{i.pk}/"]
        for action, label in (("acknowledge", "Acknowledge"), ("resolve", "Resolve")):
            url = email_action_url(page_id=carrier.pk, incident_id=i.pk, user_id=carrier.user_id, action=action)
            lines.append(f"  {label}: {url}")
        if i.details:
            lines.append("  " + _short(i.details, 500))
        lines.append("")
    lines.append("Each link works once and asks you to confirm in the browser.")
    return "\n".join(lines)


def page_message_build(*, carrier: Page, pages: list[Page]) -> OutgoingMessage:
    """The text for one message carrying `pages` (carrier first). Short, actionable, with a reference."""
    incidents: dict[int, Incident] = {}
    for p in pages:
        incidents.setdefault(p.incident_id, p.incident)
    ordered = sorted(incidents.values(), key=lambda i: i.pk)
    ref = page_reference(carrier.pk)
    first = ordered[0]
    teams = {i.team.name for i in ordered}
    if len(ordered) == 1:
        n = first.pk
        body = (
            f"Backstop #{n} [{first.team.name}] {_short(first.title, 100)}. "
            f"Reply {n}A ack, {n}R resolve, {n}E escalate. {ref}"
        )
        subject = f"[Backstop #{n}] [{first.team.name}] {_short(first.title, 150)}"
        voice = f"Backstop alert for team {first.team.name}. Incident {n}: {_short(first.title, 200)}."
    else:
        team_part = f" for {first.team.name}" if len(teams) == 1 else ""
        listing = ", ".join(
            f"#{i.pk} {_short(i.title, 40)}" if len(teams) == 1 else f"#{i.pk} [{i.team.name}] {_short(i.title, 40)}"
            for i in ordered
        )
        n = first.pk
        body = (
            f"{len(ordered)} incidents open{team_part}: {listing}. "
            f"Reply <number>A ack, R resolve, E escalate, e.g. {n}A. {ref}"
        )
        subject = f"[Backstop] {len(ordered)} incidents open{team_part}"
        voice = f"Backstop alert. {len(ordered)} incidents are open{team_part}. " + " ".join(
            f"Incident {i.pk}: {_short(i.title, 120)}." for i in ordered
        )
    if carrier.channel == Page.Channel.EMAIL:
        body = _email_body(carrier, ordered, ref)
    elif carrier.channel == Page.Channel.SLACK:
        # Buttons instead of reply codes (escalations.delivery.channels.slack, one incident per message).
        listing = "; ".join(f"#{i.pk} [{i.team.name}] {_short(i.title, 100)}" for i in ordered)
        body = f"Backstop: {listing}. {settings.PUBLIC_BASE_URL}/incidents/{first.pk}/ {ref}"
    elif carrier.channel == Page.Channel.VOICE:
        body = voice + f" {ref}"
    return OutgoingMessage(
        channel=carrier.channel,
        to=carrier.destination,
        body=body,
        subject=subject,
        page_id=carrier.pk,
        incident_id=carrier.incident_id,
        kind="page",
        user_id=carrier.user_id,
        extra={"incident_count": len(ordered)},
    )
