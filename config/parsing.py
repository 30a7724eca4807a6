"""Parsing untrusted request values."""

from __future__ import annotations

import re

_SMALL_UINT = re.compile(r"[0-9]{1,18}")


def small_uint(raw: object) -> int | None:
    """A non-negative integer written in ASCII digits (at most 18, so it fits a bigint), else None.

    `str.isdigit()` is not a guard for `int()`: "²" is a digit that int() refuses, and a 5,000-digit
    string passes isdigit() but exceeds int()'s limit — both would raise inside the view (a 500).
    """
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    return int(raw) if _SMALL_UINT.fullmatch(raw) else None
