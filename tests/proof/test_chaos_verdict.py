"""The chaos verdict's one allowance (bench/chaos.py `excuse_stalled`): a page is taken out of
"missing" only when its incident was acknowledged, the database shows its step was not reached before
the acknowledgement, and the step's nominal time fell in a recorded outage (or just after one)."""

from datetime import UTC, datetime

import pytest

from bench.chaos import CATCH_UP, Planned, Report, excuse_stalled, policies
from escalations.models import TimelineEvent
from tests.factories import IncidentFactory

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0  # the trigger, epoch seconds
ACK = policies(quick=False)["ack"]  # steps at +0, +5 and +35 s, then the loop again from +40 s


def plan(index: int, *, acked_at: float | None) -> Planned:
    incident = IncidentFactory()
    return Planned(
        index=index,
        policy=ACK,
        open_at=0.0,
        trigger_epoch=T0,
        incident_id=incident.pk,
        ack_window=(acked_at, acked_at + 0.1) if acked_at is not None else None,
    )


def reached(p: Planned, *, loop: int, step: int, at: float) -> None:
    TimelineEvent.objects.create(
        incident_id=p.incident_id,
        at=datetime.fromtimestamp(at, UTC),
        kind=TimelineEvent.Kind.STEP_REACHED,
        message="reached",
        data={"loop": loop, "step": step},
    )


def missing(p: Planned, label: str) -> tuple:
    return (p.index, label, "slot 0", "sms", f"+1555{p.index:06d}0")


def test_only_a_step_held_by_an_outage_and_acknowledged_before_it_ran_is_excused():
    outage = (T0 + 25.0, T0 + 45.0)  # the third step (nominal +35 s) falls inside it
    held = plan(1, acked_at=T0 + 47.0)  # acknowledged before the engine got to it
    ran = plan(2, acked_at=T0 + 47.0)
    reached(ran, loop=0, step=2, at=T0 + 46.0)  # reached before the ack: its page should have gone out
    late_ack = plan(3, acked_at=T0 + 47.0)
    reached(late_ack, loop=0, step=2, at=T0 + 48.0)  # reached only after the ack: excused as well
    never_acked = plan(4, acked_at=None)
    report = Report(
        missing=[
            missing(held, "loop 1 step 3"),
            missing(ran, "loop 1 step 3"),
            missing(late_ack, "loop 1 step 3"),
            missing(never_acked, "loop 1 step 3"),
            missing(held, "loop 1 step 2"),  # nominal +5 s: before the outage, so still missing
        ]
    )

    excuse_stalled([held, ran, late_ack, never_acked], report, [outage])

    assert [(row[0], row[1]) for row in report.stalled_past_ack] == [(1, "loop 1 step 3"), (3, "loop 1 step 3")]
    assert "never reached" in report.stalled_past_ack[0][4]
    assert "reached 1.0s after the ack" in report.stalled_past_ack[1][4]
    assert [(row[0], row[1]) for row in report.missing] == [
        (2, "loop 1 step 3"),
        (4, "loop 1 step 3"),
        (1, "loop 1 step 2"),
    ]


def test_the_catch_up_allowance_ends_and_no_outage_means_no_allowance():
    after = plan(1, acked_at=T0 + 47.0)
    outage_over_long_before = (T0 - 100.0, T0 + 35.0 - CATCH_UP - 1.0)
    report = Report(missing=[missing(after, "loop 1 step 3")])
    excuse_stalled([after], report, [outage_over_long_before])
    assert report.stalled_past_ack == [] and len(report.missing) == 1

    just_after = (T0 - 100.0, T0 + 35.0 - CATCH_UP + 1.0)
    excuse_stalled([after], report, [just_after])
    assert len(report.stalled_past_ack) == 1 and report.missing == []

    report = Report(missing=[missing(after, "loop 1 step 3")])
    excuse_stalled([after], report, [])
    assert report.missing and not report.stalled_past_ack
