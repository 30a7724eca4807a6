"""One log line per thing a person watching the console cares about: an incident opened, a step
reached, acknowledged or resolved, a page sent or failed, a lost send recovered. They go to the logger
`backstop.events` at INFO, which stays visible when everything else is at WARNING (the demo console,
`manage.py devstack` without --verbose).

Each line also carries its facts as fields — `event` (what happened) and the ids to correlate it with
(`incident_id`, `page_id`, `channel`, `code`, ...) — which the JSON log format (LOG_FORMAT=json,
config.log_json) writes next to the message and the plain format leaves out. Never a phone number,
transcript or token: fields hold ids and fixed vocabularies.

A line is written only once the transaction that made the change commits: nothing is announced that
then rolls back.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger("backstop.events")


def event_log(message: str, *args: object, level: int = logging.INFO, **fields: object) -> None:
    if logger.isEnabledFor(level):
        transaction.on_commit(lambda: logger.log(level, message, *args, extra=fields))


def short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
