"""The text of a page: what the person is told, per channel."""

from __future__ import annotations

from django.conf import settings

from escalations.delivery.channels import (
    OutgoingMessage,
    page_reference,
)
from escalations.models import Incident, Page

# --- message text ------------------------------------------------------------------------------


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        link_base = settings.PUBLIC_BASE_URL
        lines = [body, ""]
        for i in ordered:
            lines += [f"#{i.pk} [{i.team.name}] {i.title}", f"  {link_base}/incidents/{i.pk}/"]
            if i.details:
                lines.append("  " + _short(i.details, 500))
        body = "\n".join(lines)
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
    )
