"""Definition changes continue the participant cycle (schedule.cycle_offset), pure resolver."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from rotations.schedule import Era, RotationSpec, cycle_offset, oncall_at, rotation_shifts

A, B, C, D, E, F = 1, 2, 3, 4, 5, 6
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday
WEEK = timedelta(weeks=1)


def spec_with_change(
    first: tuple[int, ...],
    then: tuple[int, ...],
    at: datetime,
    positions: tuple[str, ...] = ("primary",),
    unit: str = "weeks",
    length: int = 1,
    offset: int | None = None,
) -> RotationSpec:
    """`first` from T0, `then` from `at` (same anchor, so the handoff rhythm continues)."""
    spec = RotationSpec(1, 10, "UTC", positions, (Era(T0, T0, unit, length, first), Era(at, T0, unit, length, then)))
    new = dataclasses.replace(spec.eras[1], offset=cycle_offset(spec, 1) if offset is None else offset)
    return dataclasses.replace(spec, eras=(spec.eras[0], new))


def leads(spec: RotationSpec, shifts: int, position: int = 0) -> list[int | None]:
    got = rotation_shifts(spec, [], [], T0, T0 + WEEK * shifts)
    return [s.user_id for s in got if s.position_index == position]


def test_newcomer_at_a_handoff_joins_at_the_end_of_the_cycle():
    spec = spec_with_change((A, B, C, D), (A, B, C, D, E), T0 + 5 * WEEK)
    assert leads(spec, 12) == [A, B, C, D, A, B, C, D, E, A, B, C]


def test_unfair_offset_zero_is_what_main_did():
    # The same change without continuing the cycle: A twice in a row (the reported bug).
    spec = spec_with_change((A, B, C, D), (A, B, C, D, E), T0 + 5 * WEEK, offset=0)
    assert leads(spec, 7) == [A, B, C, D, A, A, B]


def test_newcomer_put_elsewhere_by_the_manager_serves_where_put():
    spec = spec_with_change((A, B, C, D), (A, B, E, C, D), T0 + 5 * WEEK)
    assert leads(spec, 11) == [A, B, C, D, A, B, E, C, D, A, B]


def test_removed_persons_turn_passes_to_the_next():
    spec = spec_with_change((A, B, C, D), (A, C, D), T0 + 5 * WEEK)  # B was next
    assert leads(spec, 9) == [A, B, C, D, A, C, D, A, C]


def test_removing_someone_else_keeps_whoever_was_next():
    spec = spec_with_change((A, B, C, D), (A, B, D), T0 + 5 * WEEK)
    assert leads(spec, 9) == [A, B, C, D, A, B, D, A, B]


def test_reorder_keeps_next_then_follows_the_new_order():
    spec = spec_with_change((A, B, C, D), (D, C, B, A), T0 + 6 * WEEK)  # C was next
    assert leads(spec, 10) == [A, B, C, D, A, B, C, B, A, D]


def test_nobody_leads_twice_in_a_row_when_only_the_last_and_newcomers_remain():
    # B led the last shift, C was next; C and D leave, E joins: E, not B again.
    spec = spec_with_change((A, B, C, D), (B, E), T0 + 6 * WEEK)
    assert leads(spec, 9) == [A, B, C, D, A, B, E, B, E]


def test_single_person_joined_by_a_second_hands_over():
    spec = spec_with_change((A,), (A, B), T0 + 3 * WEEK)
    assert leads(spec, 6) == [A, A, A, B, A, B]


def test_positions_continue_primary_stays_primary_secondary_moves_up():
    positions = ("primary", "secondary")
    spec = spec_with_change((A, B, C, D), (A, B, C, D, E), T0 + 5 * WEEK, positions=positions)
    pairs = list(zip(leads(spec, 10, 0), leads(spec, 10, 1), strict=True))
    assert pairs == [(A, B), (B, C), (C, D), (D, A), (A, B), (B, C), (C, D), (D, E), (E, A), (A, B)]


def test_positions_when_the_next_primary_leaves():
    positions = ("primary", "secondary")
    # Next would have been (B, C); B leaves: C takes the primary turn, D the secondary.
    spec = spec_with_change((A, B, C, D), (A, C, D), T0 + 5 * WEEK, positions=positions)
    pairs = list(zip(leads(spec, 8, 0), leads(spec, 8, 1), strict=True))
    assert pairs == [(A, B), (B, C), (C, D), (D, A), (A, B), (C, D), (D, A), (A, C)]


def test_mid_shift_change_keeps_the_holder_until_the_next_handoff():
    at = T0 + 5 * WEEK + timedelta(days=2)  # B on call
    spec = spec_with_change((A, B, C, D), (A, B, C, D, E), at)
    assert [s.user_id for s in oncall_at(spec, [], [], at)] == [B]
    assert leads(spec, 10) == [A, B, C, D, A, B, B, C, D, E, A]  # B's week split at the era boundary


def test_mid_shift_change_removing_the_holder_hands_the_rest_to_the_next():
    at = T0 + 5 * WEEK + timedelta(days=2)  # B on call
    spec = spec_with_change((A, B, C, D), (A, C, D), at)
    assert [s.user_id for s in oncall_at(spec, [], [], at)] == [C]
    assert leads(spec, 9) == [A, B, C, D, A, B, C, D, A, C]  # C finishes B's week, then C's order goes on


def test_new_rhythm_continues_from_the_holder_at_the_change():
    # Weekly -> daily from Wednesday of week 6 (B on call): B finishes the day, then C, D, A...
    at = T0 + 5 * WEEK + timedelta(days=2)
    spec = spec_with_change((A, B, C, D), (A, B, C, D), at, unit="days")
    got = [s.user_id for s in rotation_shifts(spec, [], [], at, at + timedelta(days=5))]
    assert got == [B, C, D, A, B]


def test_no_previous_era_starts_with_the_first_participant():
    late = T0 + 3 * WEEK
    spec = RotationSpec(1, 10, "UTC", ("primary",), (Era(late, T0, "weeks", 1, (C, A, B)),))
    offset = cycle_offset(spec, 0)
    spec = dataclasses.replace(spec, eras=(dataclasses.replace(spec.eras[0], offset=offset),))
    assert [s.user_id for s in rotation_shifts(spec, [], [], late, late + 4 * WEEK)] == [C, A, B, C]


def test_offset_zero_is_the_resolver_of_old():
    # Stored eras are backfilled with offset 0: they resolve exactly as before the field existed.
    era = Era(T0, T0, "weeks", 1, (A, B, C))
    spec = RotationSpec(1, 10, "UTC", ("primary", "secondary"), (era,))
    assert [(s.user_id, s.shift_index) for s in rotation_shifts(spec, [], [], T0, T0 + 4 * WEEK)] == [
        (A, 0),
        (B, 0),
        (B, 1),
        (C, 1),
        (C, 2),
        (A, 2),
        (A, 3),
        (B, 3),
    ]
