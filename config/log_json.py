"""Log lines an operator's tools can read: one JSON object per line, each with the ids to correlate.

`JsonFormatter` writes `ts`, `level`, `logger`, `message`, the `request_id` (web requests) or `task_id`
(Celery tasks) the line belongs to, every field a call site passed in `extra` (`event`, `incident_id`,
`page_id`, `channel`, `code`, ...), and the exception text. Chosen by LOG_FORMAT (json in production,
plain lines in the demo).

Redaction (config.log_redaction) still applies: its filter rewrites the message and exception text
before any formatter runs, and this formatter passes string extras through the same patterns, so a
phone number put in `extra` by mistake is masked too.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse

from config.log_redaction import redact

# The id of the request or task this thread of work is serving ("" outside both).
current_request_id: ContextVar[str] = ContextVar("backstop_request_id", default="")
current_task_id: ContextVar[str] = ContextVar("backstop_task_id", default="")

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None) and (request_id := current_request_id.get()):
            record.request_id = request_id
        if not getattr(record, "task_id", None) and (task_id := current_task_id.get()):
            record.task_id = task_id
        return True


def _plain(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = _plain(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestIdMiddleware:
    """Give each request an id (the proxy's X-Request-ID when it sent a sane one), put it on every log
    line of the request and echo it in the response, so a complaint can be matched to the logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response
