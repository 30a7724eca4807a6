"""The channel interface: one outgoing message in, a provider id out, or a classified error."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class ChannelError(Exception):
    """Base class: the provider did not accept the message (or we cannot tell)."""


class TemporaryChannelError(ChannelError):
    """Nothing was sent; trying again later may work (provider 5xx/429, connection refused)."""


class PermanentChannelError(ChannelError):
    """Nothing was sent and retrying will not help (invalid number, opted out, rejected address)."""


class UnknownOutcomeError(ChannelError):
    """The request may have reached the provider (read timeout, connection dropped mid-response).

    Never retry blindly: reconciliation asks the provider whether it already has the message.
    """


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # "sms" | "voice" | "email"
    to: str
    body: str
    subject: str = ""
    page_id: int | None = None
    incident_id: int | None = None
    kind: str = "page"
    extra: dict = field(default_factory=dict)
    # Who the message is for, and the method a verification code verifies: the outbox shows a message
    # only to its recipient. Providers ignore both.
    user_id: int | None = None
    contact_method_id: int | None = None

    @property
    def reference(self) -> str:
        return page_reference(self.page_id) if self.page_id else ""


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    status: str


class Channel(Protocol):
    kind: str

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def find_sent(self, message: OutgoingMessage, *, since: datetime, exclude_ids: set[str]) -> str | None:
        """The provider id of `message` if the provider already accepted it after `since`, else None.

        Raises ChannelError when the provider cannot be asked (reconciliation tries again later).
        """
        ...


_REF_RE = re.compile(r"\bRef P(\d+)\b")


def page_reference(page_id: int) -> str:
    """A stable token in every page's text, so a message sent before a crash can be found again."""
    return f"Ref P{page_id}"


def page_reference_ids(text: str) -> set[int]:
    return {int(m) for m in _REF_RE.findall(text or "")}
