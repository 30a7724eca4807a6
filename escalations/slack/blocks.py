"""What Slack shows: the incident message (text + Block Kit blocks with the action buttons)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings

from escalations.models import Incident

# action_id of each button; the value is the incident id. Channel messages and paging DMs share them.
ACTIONS = {
    "incident_acknowledge": "Acknowledge",
    "incident_escalate": "Escalate",
    "incident_resolve": "Resolve",
}

_STATUS_ICON: dict[str, str] = {
    Incident.Status.TRIGGERED: ":red_circle:",
    Incident.Status.ACKNOWLEDGED: ":large_yellow_circle:",
    Incident.Status.RESOLVED: ":large_green_circle:",
}


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    # Slack's mrkdwn reads these three as control characters (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def incident_url(incident: Incident | int) -> str:
    pk = incident if isinstance(incident, int) else incident.pk
    return f"{settings.PUBLIC_BASE_URL}/incidents/{pk}/"


def _text_prefix(incident_id: int) -> str:
    return f"Backstop #{incident_id} ["


def is_incident_message(message: dict[str, Any], incident_id: int) -> bool:
    """Is this message from a channel's history the app's message of the incident? It carries the
    fallback text `incident_message` writes and the incident's link in its first block; a person
    quoting the incident in the channel writes neither."""
    first = (message.get("blocks") or [{}])[0]
    link = str((first.get("text") or {}).get("text", "")) if isinstance(first, dict) else ""
    return str(message.get("text", "")).startswith(_text_prefix(incident_id)) and incident_url(incident_id) in link


def status_line(incident: Incident) -> str:
    if incident.status == Incident.Status.RESOLVED:
        by = incident.resolved_by.display_name if incident.resolved_by else "Backstop"
        return f"Resolved by {by}"
    if incident.status == Incident.Status.ACKNOWLEDGED:
        by = incident.acknowledged_by.display_name if incident.acknowledged_by else "Backstop"
        return f"Acknowledged by {by}"
    step = f", escalation step {incident.step + 1}" if incident.step >= 0 else ""
    return f"Triggered{step}"


def buttons(incident: Incident) -> list[dict[str, Any]]:
    """The buttons that make sense in the incident's state (none once it is resolved)."""
    if incident.status == Incident.Status.RESOLVED:
        return []
    wanted = ["incident_escalate", "incident_resolve"]
    if incident.status == Incident.Status.TRIGGERED:
        wanted.insert(0, "incident_acknowledge")
    out = []
    for action_id in wanted:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": ACTIONS[action_id]},
            "value": str(incident.pk),
        }
        if action_id == "incident_acknowledge":
            button["style"] = "primary"
        elif action_id == "incident_resolve":
            button["style"] = "danger"
        out.append(button)
    return out


def incident_message(incident: Incident) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of the channel message for the incident as it is now."""
    title = _short(incident.title, 200)
    status = status_line(incident)
    text = f"{_text_prefix(incident.pk)}{incident.team.name}] {title} — {status}"
    assignees = ", ".join(u.display_name for u in incident.assignees.all()) or "nobody yet"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{_STATUS_ICON.get(incident.status, '')} *<{incident_url(incident)}|#{incident.pk}>* "
                f"{_escape(title)}\n*{status}*",
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _escape(
                        f"{incident.team.name} · {incident.get_severity_display()} · "
                        f"{incident.get_urgency_display()} urgency · assigned to {assignees}"
                    ),
                }
            ],
        },
    ]
    actions = buttons(incident)
    if actions:
        blocks.append({"type": "actions", "block_id": f"incident-{incident.pk}", "elements": actions})
    return text, blocks


def fingerprint(text: str, blocks: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()[:32]
