"""Weekly masks -> Backstop restriction windows: the windows cover exactly the mask, whatever its shape."""

from __future__ import annotations

from datetime import time

from hypothesis import given
from hypothesis import strategies as st

from portal.importers.plan import (
    DAY_MINUTES,
    FULL_WEEK,
    WEEK_MINUTES,
    mask_normalise,
    mask_subtract,
    mask_windows,
)
from rotations.services.validation import validate_windows

intervals = st.lists(
    st.tuples(st.integers(0, WEEK_MINUTES - 1), st.integers(1, 3 * DAY_MINUTES)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=6,
)


def _minutes(mask: list[tuple[int, int]]) -> set[int]:
    return {m for a, b in mask for m in range(a, b)}


def _window_minutes(windows: list[dict]) -> set[int]:
    out: set[int] = set()
    for w in windows:
        s, e = time.fromisoformat(w["start"]), time.fromisoformat(w["end"])
        a = w["weekday"] * DAY_MINUTES + s.hour * 60 + s.minute
        length = (e.hour * 60 + e.minute - (s.hour * 60 + s.minute)) % DAY_MINUTES
        out |= {(a + i) % WEEK_MINUTES for i in range(length)}
    return out


@given(intervals)
def test_windows_cover_exactly_the_mask(raw):
    mask = mask_normalise(raw)
    windows = mask_windows(mask)
    assert validate_windows(windows) == windows  # Backstop accepts them as they are
    if mask == FULL_WEEK:
        assert windows == []  # no restriction: always on
    else:
        assert _window_minutes(windows) == _minutes(mask)


@given(intervals, intervals)
def test_subtract_is_set_difference(a, b):
    left, right = mask_normalise(a), mask_normalise(b)
    assert _minutes(mask_subtract(left, right)) == _minutes(left) - _minutes(right)
