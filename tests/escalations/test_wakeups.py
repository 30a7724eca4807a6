"""Wake-up timing for engine advances and page deliveries (pure)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from escalations.wakeups import MAX_ETA, chunks, eta_bucket, eta_groups

NOW = datetime(2026, 11, 27, 3, 12, 0, 400_000, tzinfo=UTC)
MS50 = timedelta(milliseconds=50)


def test_a_due_time_is_rounded_up_to_its_bucket_end():
    assert eta_bucket(datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC), MS50) == datetime(
        2026, 1, 1, 0, 0, 0, 50_000, tzinfo=UTC
    )
    on_edge = datetime(2026, 1, 1, 0, 0, 0, 100_000, tzinfo=UTC)
    assert eta_bucket(on_edge, MS50) == on_edge


def test_a_granularity_under_a_microsecond_keeps_the_exact_time():
    due = datetime(2026, 1, 1, 0, 0, 0, 123_457, tzinfo=UTC)
    assert eta_bucket(due, timedelta(0)) == due


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=1, max_value=5_000_000),
)
def test_the_bucket_is_never_early_and_at_most_one_granularity_late(due, micros):
    granularity = timedelta(microseconds=micros)
    eta = eta_bucket(due, granularity)
    assert due <= eta < due + granularity


def test_groups_share_a_message_per_bucket_and_leave_far_ones_to_the_sweep():
    items = [
        (1, NOW - timedelta(seconds=3)),  # overdue: now
        (2, None),  # no time: now
        (3, NOW + timedelta(milliseconds=110)),
        (4, NOW + timedelta(milliseconds=140)),  # same 50 ms bucket as 3
        (5, NOW + timedelta(milliseconds=160)),
        (6, NOW + MAX_ETA + timedelta(seconds=1)),  # too far for a Celery ETA
    ]
    groups = eta_groups(items, now=NOW, granularity=MS50)
    assert groups == {
        None: [1, 2],
        datetime(2026, 11, 27, 3, 12, 0, 550_000, tzinfo=UTC): [3, 4],
        datetime(2026, 11, 27, 3, 12, 0, 600_000, tzinfo=UTC): [5],
    }


def test_chunks_cover_every_id_once_in_order():
    assert list(chunks(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
