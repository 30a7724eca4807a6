"""The Slack Web API client (the official `slack_sdk`), built from settings.

Without `BACKSTOP_SLACK_BOT_TOKEN` Slack is not configured and everything Slack does is inert: no
task is published, no channel message is posted, a `slack` contact method is never paged (it cannot
be connected), and the inbound endpoints answer 404.

Rate limits: the SDK's `RateLimitErrorRetryHandler` sleeps for Slack's `Retry-After` and tries again,
up to `BACKSTOP_SLACK_RATE_LIMIT_RETRIES` times; a 429 beyond that surfaces as `SlackRateLimited`
carrying the wait, so a task can retry later instead of holding a worker. Never call this inside a
database transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from http.client import HTTPException
from typing import Any, TypeVar
from urllib.error import URLError

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

T = TypeVar("T")


class SlackError(Exception):
    """Slack refused or could not be reached; nothing to retry blindly unless a subclass says so."""


class SlackTemporaryError(SlackError):
    """Try again later (connection failure, Slack 5xx)."""


class SlackRateLimited(SlackTemporaryError):
    """Still 429 after the SDK's own retries: try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SlackUnknownOutcome(SlackError):
    """The request may have reached Slack (read timeout, connection dropped mid-answer): never resend
    blindly; look for it first (paging DMs carry their page reference)."""


class SlackPermanentError(SlackError):
    """Slack answered with an error no retry fixes (`channel_not_found`, `users_not_found`, …)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def slack_configured() -> bool:
    return bool(settings.BACKSTOP_SLACK_BOT_TOKEN)


def slack_inbound_configured() -> bool:
    return bool(settings.BACKSTOP_SLACK_BOT_TOKEN and settings.BACKSTOP_SLACK_SIGNING_SECRET)


@functools.lru_cache(maxsize=16)
def _build(token: str, base_url: str, timeout: int, rate_limit_retries: int) -> WebClient:
    # Replaces the default handlers (connection errors only) with both: a 429 waits for Retry-After.
    kwargs: dict[str, Any] = {
        "token": token,
        "timeout": timeout,
        "retry_handlers": [
            # Only failures to connect: a connection reset after the request went out may have posted it.
            ConnectionErrorRetryHandler(max_retry_count=1, error_types=[URLError]),
            RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        ],
    }
    if base_url:
        kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    return WebClient(**kwargs)


def slack_client() -> WebClient:
    """The client for the current settings (tests point BACKSTOP_SLACK_API_URL at a fake). A WebClient
    keeps no per-request state, so threads may share it."""
    return _build(
        settings.BACKSTOP_SLACK_BOT_TOKEN,
        settings.BACKSTOP_SLACK_API_URL,
        int(settings.BACKSTOP_SLACK_TIMEOUT),
        int(settings.BACKSTOP_SLACK_RATE_LIMIT_RETRIES),
    )


def slack_call(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Call one Web API method, turning the SDK's errors into ours (what the caller must do)."""
    try:
        return fn(**kwargs)
    except SlackApiError as exc:
        response = exc.response
        code = str(response.get("error") or "") if response is not None else ""
        status = getattr(response, "status_code", 0) or 0
        if status == 429:
            retry_after = float(response.headers.get("Retry-After", response.headers.get("retry-after", 30)) or 30)
            raise SlackRateLimited(f"Slack rate limit ({fn.__name__})", retry_after) from exc
        if status >= 500 or code in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
            raise SlackTemporaryError(f"Slack {status} {code} ({fn.__name__})") from exc
        raise SlackPermanentError(f"Slack refused {fn.__name__}: {code or status}", code) from exc
    except (SlackClientError, URLError) as exc:
        raise SlackTemporaryError(f"could not reach Slack ({fn.__name__}): {exc}") from exc
    except (OSError, HTTPException) as exc:
        raise SlackUnknownOutcome(f"no answer from Slack ({fn.__name__}): {exc!r}") from exc
