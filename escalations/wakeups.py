"""When to wake a worker: Celery ETAs for engine advances and page deliveries (pure, no I/O).

A message carries every id due in the same short bucket, so thousands of escalations falling due
together cost a few messages per second rather than one each. The bucket's end is the ETA: a
message never arrives before its ids are due, and at most one bucket after. The bucket is a setting
and can be well under a second: rounding up to whole seconds would add up to a second of lateness to
every page.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

# Celery ETAs shorter than the broker's visibility timeout (300 s) are safe; a longer wait would be
# redelivered by Redis while the worker still holds it. Later work is the sweeps' (with lookahead).
MAX_ETA = timedelta(seconds=250)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def eta_bucket(due: datetime, granularity: timedelta) -> datetime:
    """`due` rounded up to the next multiple of `granularity` since the epoch (exact, in microseconds)."""
    step = granularity // _US
    if step <= 1:
        return due
    micros = (due - _EPOCH) // _US
    return _EPOCH + _US * (-(-micros // step) * step)


def eta_groups(
    items: Iterable[tuple[int, datetime | None]],
    *,
    now: datetime,
    granularity: timedelta,
    max_eta: timedelta = MAX_ETA,
) -> dict[datetime | None, list[int]]:
    """ETA -> ids. None means now (already due or no time given); ids due later than `max_eta`
    are left out: a periodic sweep wakes them when they come near."""
    groups: dict[datetime | None, list[int]] = {}
    for item_id, due in items:
        if due is None or due <= now:
            groups.setdefault(None, []).append(item_id)
        elif due - now < max_eta:
            groups.setdefault(eta_bucket(due, granularity), []).append(item_id)
    return groups


def chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
