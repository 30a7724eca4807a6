"""Slack DM channel: a page as a direct message from the Backstop app, with the incident buttons.

Same rows, claim, throttle, reconciliation and timeline as SMS: the destination is the person's Slack
user id (their `slack` contact method). The text carries the page reference ("Ref P123"), so after a
timeout reconciliation finds the message in the DM's history instead of sending it twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from escalations.delivery.channels.base import (
    ChannelError,
    OutgoingMessage,
    PermanentChannelError,
    SendResult,
    TemporaryChannelError,
    UnknownOutcomeError,
    page_reference_ids,
)
from escalations.slack.client import (
    SlackError,
    SlackPermanentError,
    SlackTemporaryError,
    SlackUnknownOutcome,
    slack_call,
    slack_client,
    slack_configured,
)

_ACTIONS = (
    ("incident_acknowledge", "Acknowledge", "primary"),
    ("incident_escalate", "Escalate", None),
    ("incident_resolve", "Resolve", "danger"),
)


def _classify(exc: SlackError) -> ChannelError:
    if isinstance(exc, SlackUnknownOutcome):
        return UnknownOutcomeError(str(exc))
    if isinstance(exc, SlackTemporaryError):
        return TemporaryChannelError(str(exc))
    return PermanentChannelError(str(exc))


def _blocks(message: OutgoingMessage) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"type": "section", "text": {"type": "plain_text", "text": message.body[:2900]}}]
    if message.incident_id and message.extra.get("incident_count", 1) == 1:
        elements = []
        for action_id, label, style in _ACTIONS:
            button: dict[str, Any] = {
                "type": "button",
                "action_id": action_id,
                "text": {"type": "plain_text", "text": label},
                "value": str(message.incident_id),
            }
            if style:
                button["style"] = style
            elements.append(button)
        out.append({"type": "actions", "elements": elements})
    return out


class SlackDmChannel:
    kind = "slack"
    # Network calls touching no database: a batch's DMs may go out from several threads at once.
    concurrent_sends = True

    def _dm(self, user_id: str) -> str:
        if not slack_configured():
            raise PermanentChannelError("Slack is not configured on this installation")
        try:
            answer = slack_call(slack_client().conversations_open, users=user_id)
        except SlackUnknownOutcome as exc:
            # Opening a DM twice is harmless, and nothing was posted yet.
            raise TemporaryChannelError(str(exc)) from exc
        except SlackError as exc:
            raise _classify(exc) from exc
        return str(answer["channel"]["id"])

    def send(self, message: OutgoingMessage) -> SendResult:
        channel = self._dm(message.to)
        try:
            answer = slack_call(
                slack_client().chat_postMessage, channel=channel, text=message.body, blocks=_blocks(message)
            )
        except SlackError as exc:
            raise _classify(exc) from exc
        return SendResult(provider_id=f"{channel}:{answer['ts']}", status="sent")

    def find_sent(self, message: OutgoingMessage, *, since: datetime, exclude_ids: set[str]) -> str | None:
        channel = self._dm(message.to)
        try:
            answer = slack_call(
                slack_client().conversations_history, channel=channel, oldest=f"{since.timestamp():.6f}", limit=200
            )
        except SlackPermanentError as exc:
            raise TemporaryChannelError(f"could not read the DM history: {exc}") from exc
        except SlackError as exc:
            raise TemporaryChannelError(str(exc)) from exc
        for found in answer.get("messages") or []:
            provider_id = f"{channel}:{found.get('ts')}"
            if message.page_id in page_reference_ids(found.get("text") or "") and provider_id not in exclude_ids:
                return provider_id
        return None
