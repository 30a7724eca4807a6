"""One log line per thing a person watching the console cares about: an incident opened, acknowledged
or resolved, a page sent. They go to the logger `backstop.events` at INFO, which stays visible when
everything else is at WARNING (the demo console, `manage.py devstack` without --verbose).

A line is written only once the transaction that made the change commits: nothing is announced that
then rolls back.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger("backstop.events")


def event_log(message: str, *args: object) -> None:
    if logger.isEnabledFor(logging.INFO):
        transaction.on_commit(lambda: logger.info(message, *args))


def short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
