"""PostgreSQL advisory-lock keys, in one place so no two features ever share a key by accident.

PostgreSQL has two separate key spaces: a single bigint (`pg_advisory_xact_lock(key)`) and a pair of
ints (`pg_advisory_xact_lock(class, key)`). A single-bigint key never collides with a pair. No Django
import here: the constants are plain numbers, readable from anywhere.
"""

from __future__ import annotations

import zlib

# Single bigint: one inbox drainer at a time ("bkst"), held for each batch transaction.
INBOX_DRAIN = 0x626B7374

# Single bigint: one Insights roll-up refresh at a time, whatever the number of beats that fire it.
INSIGHTS_ROLLUP = 0x1B50A11

# First int of the pair form: serialises throttle checks and bundling per paging destination. The
# second int is `destination_key(channel, destination)`; callers take them in ascending order so two
# batches sharing destinations never wait on each other in a cycle.
PAGE_DESTINATION_CLASS = 4242


def destination_key(channel: str, destination: str) -> int:
    """The second int of a paging-destination lock: a stable 32-bit signed hash of the destination."""
    return zlib.crc32(f"page:{channel}:{destination}".encode()) - 2**31
