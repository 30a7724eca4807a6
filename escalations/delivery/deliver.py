"""Page delivery: from a `pending` Page row to exactly one message at the provider.

Exactly-once rests on three things:

* The claim is a conditional transition (`pending -> sending`) of a row locked `FOR UPDATE`;
  whoever moves the row owns the attempt, so a redelivered Celery message, a second worker or an
  overlapping batch finds nothing to do. A batch claims all its pages in one transaction.
* The provider is called outside any transaction, and its answer is recorded with another
  conditional UPDATE. A timeout leaves the row in `sending`.
* `pages_reconcile_stuck` asks the provider about rows left in `sending` (worker killed, timeout)
  and only puts a page back to `pending` when the provider does not have its message. SMS bodies
  carry a page reference ("Ref P123") so the message can be found again; calls are matched on
  to/from/creation time. E-mail cannot be asked and is at-least-once.

No Celery here: the tasks in `escalations.delivery.tasks` wrap these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.db import OperationalError
from django.utils import timezone

from escalations.delivery import claim
from escalations.delivery.record import DeliveryOutcome
from escalations.delivery.send import _pages_send

logger = logging.getLogger(__name__)


# --- deliver -------------------------------------------------------------------------------------


def page_deliver(*, page_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Send one due page (and any other due pages to the same destination, bundled) exactly once."""
    return pages_deliver(page_ids=[page_id], now=now)[0]


def pages_deliver(*, page_ids: Sequence[int], now: datetime | None = None) -> list[DeliveryOutcome]:
    """Send these due pages, each exactly once, with every other due page to the same destination
    riding along (bundled). One outcome per distinct id, in order.

    A wake-up message carries the pages due in one short bucket, so the batch is claimed in one
    transaction (a handful of statements however many pages), the provider is called for every claimed
    page at once, outside any transaction, and the answers are recorded together. Each page's claim is
    still its own conditional `pending -> sending` transition under a row lock, so a redelivered
    message, a second worker or an overlapping batch finds nothing left to send.
    """
    now = now or timezone.now()
    ids = list(dict.fromkeys(page_ids))
    if not ids:
        return []
    for attempt in range(3):
        outcomes: dict[int, DeliveryOutcome] = {}
        try:
            carriers = claim._pages_claim(ids, now, outcomes)
            break
        except OperationalError as exc:
            # Row locks are taken in id order, but an acknowledgement cancelling an incident's pages
            # locks them in its own order; PostgreSQL breaks such a cycle by failing one side.
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "40P01":
                raise
    if carriers:
        outcomes.update(_pages_send(carriers, now))
    return [outcomes[pk] for pk in ids]
