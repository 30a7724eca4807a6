"""Paging channels. `channel_for(kind)` picks Twilio SMS/voice, e-mail, a Slack DM, or the console outbox."""

from __future__ import annotations

from escalations.delivery.channels.base import (
    Channel,
    ChannelError,
    OutgoingMessage,
    PermanentChannelError,
    SendResult,
    TemporaryChannelError,
    UnknownOutcomeError,
    page_reference,
    page_reference_ids,
)

__all__ = [
    "Channel",
    "ChannelError",
    "OutgoingMessage",
    "PermanentChannelError",
    "SendResult",
    "TemporaryChannelError",
    "UnknownOutcomeError",
    "channel_for",
    "page_reference",
    "page_reference_ids",
]


def channel_for(kind: str) -> Channel:
    from escalations.delivery.channels.console import ConsoleChannel
    from escalations.delivery.channels.email import EmailChannel
    from escalations.delivery.channels.twilio import TwilioSmsChannel, TwilioVoiceChannel, twilio_configured

    if kind == "email":
        return EmailChannel()
    if kind == "slack":
        from escalations.delivery.channels.slack import SlackDmChannel

        return SlackDmChannel()
    if kind not in ("sms", "voice"):
        raise ValueError(f"unknown channel {kind!r}")
    if not twilio_configured():
        return ConsoleChannel(kind)
    return TwilioSmsChannel() if kind == "sms" else TwilioVoiceChannel()
