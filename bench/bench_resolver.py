"""Benchmark for rotations.schedule (prints figures, asserts nothing).

Run:  .venv/bin/python bench/bench_resolver.py [--cpu]

--cpu times with this process's CPU time (time.process_time) instead of wall time: the figure to
trust on a machine shared with other work, where wall time counts the waits for a core.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rotations import schedule
from rotations.schedule import (
    Era,
    Exclusion,
    Override,
    RotationSpec,
    oncall_at,
    rotation_shifts,
    team_oncall_at,
)

ZONES = ["Europe/Berlin", "America/Chicago", "Australia/Sydney", "UTC", "Asia/Tokyo"]
NOW = datetime(2026, 11, 27, 14, 3, tzinfo=UTC)


CLOCK = time.process_time if "--cpu" in sys.argv else time.perf_counter


def best_of(fn: Callable[[], object], repeat: int = 15, setup: Callable[[], object] | None = None) -> float:
    """Best time in seconds over `repeat` runs (after one warm-up): wall, or CPU with --cpu.
    `setup` runs before each run, untimed."""
    if setup:
        setup()
    fn()
    best = float("inf")
    for _ in range(repeat):
        if setup:
            setup()
        t0 = CLOCK()
        fn()
        best = min(best, CLOCK() - t0)
    return best


def make_team(rng: random.Random, team_id: int, near_now: bool):
    tz = rng.choice(ZONES)
    users = tuple(range(team_id * 100, team_id * 100 + rng.randint(3, 8)))
    anchor = datetime(2021, 1, 4, 9, tzinfo=ZoneInfo(tz)) + timedelta(days=rng.randint(0, 1800))
    spec = RotationSpec(
        team_id,
        team_id,
        tz,
        ("primary", "secondary"),
        (Era(anchor, anchor, "weeks", 1, users),),
    )

    def span():
        # near_now=True forces every exclusion/override to overlap NOW (slow path).
        if near_now:
            s = NOW - timedelta(hours=rng.randint(1, 48))
            return s, NOW + timedelta(hours=rng.randint(1, 48))
        s = NOW + timedelta(hours=rng.randint(-24 * 30, 24 * 30))
        return s, s + timedelta(hours=rng.randint(2, 24 * 7))

    exclusions = [Exclusion(rng.choice(users), *span(), id=i) for i in range(5)]
    overrides = []
    for i in range(5):
        s, e = span()
        if i % 2:
            overrides.append(Override(team_id, users[0] + 50, s, e, position="secondary", id=i))
        else:
            overrides.append(
                Override(
                    team_id,
                    users[0] + 50,
                    s,
                    e,
                    replaces_user_id=rng.choice(users),
                    id=i,
                )
            )
    return [spec], exclusions, overrides


def bench_now() -> None:
    print("== who is on call now: 1,000 teams x 2 positions, 5 exclusions + 5 overrides each ==")
    for label, near in (
        ("typical (random exclusions/overrides within +-30 days)", False),
        ("worst case (all 10 overlap now -> segment splitting)", True),
    ):
        rng = random.Random(42)
        teams = [make_team(rng, t, near) for t in range(1, 1001)]

        # Polling: each round asks a second later than the previous one.
        tick = itertools.count()

        def run(teams=teams, tick=tick):
            at = NOW + timedelta(seconds=next(tick))
            for specs, exs, ovs in teams:
                team_oncall_at(specs, exs, ovs, at)

        def run_single(teams=teams, tick=tick):
            at = NOW + timedelta(seconds=next(tick))
            for specs, exs, ovs in teams:
                oncall_at(specs[0], exs, ovs, at)

        def drop_compiled():
            # Drop compiled specs (and with them the per-era memo): first call
            # for every team, zone lookups aside.
            schedule._compiled.clear()
            schedule._compiled_by_value.clear()

        def run_rebuilt(teams=teams):
            # Specs rebuilt per request (as from the ORM): equal but new objects.
            for specs, exs, ovs in teams:
                team_oncall_at([dataclasses.replace(s) for s in specs], exs, ovs, NOW)

        def rebuild_only(teams=teams):
            for specs, _, _ in teams:
                [dataclasses.replace(s) for s in specs]

        def drop_memos(teams=teams):
            for specs, _, _ in teams:
                for ce in schedule._compile(specs[0]).eras:
                    ce.memo = ce.seg_memo = None

        t_team = best_of(run, 30)
        t_single = best_of(run_single, 30)
        t_cold = best_of(run, 15, setup=drop_compiled)
        t_cold_memo = best_of(run, 15, setup=drop_memos)
        t_rebuilt = best_of(run_rebuilt, 15) - best_of(rebuild_only, 15)
        print(f"  {label}")
        print(
            f"    team_oncall_at x1000, warm:          {t_team * 1e3:7.2f} ms ({t_team * 1e3:5.1f} us/team) target<20ms"
        )
        print(f"    oncall_at      x1000, warm:          {t_single * 1e3:7.2f} ms")
        print(f"    team_oncall_at x1000, no memo:       {t_cold_memo * 1e3:7.2f} ms  (memos cleared)")
        print(
            f"    team_oncall_at x1000, rebuilt specs: {t_rebuilt * 1e3:7.2f} ms  (equal specs, new objects each call)"
        )
        print(f"    team_oncall_at x1000, cold:          {t_cold * 1e3:7.2f} ms  (includes compiling 1,000 specs)")


def bench_year() -> None:
    print("== one year of shifts: weekly, 2 positions, 20 exclusions ==")
    rng = random.Random(7)
    tz = ZoneInfo("Europe/Berlin")
    users = (1, 2, 3, 4, 5, 6)
    anchor = datetime(2024, 1, 1, 9, tzinfo=tz)
    spec = RotationSpec(
        1,
        1,
        "Europe/Berlin",
        ("primary", "secondary"),
        (Era(anchor, anchor, "weeks", 1, users),),
    )
    since = datetime(2026, 1, 1, tzinfo=UTC)
    until = datetime(2027, 1, 1, tzinfo=UTC)
    exs = []
    for i in range(20):
        s = since + timedelta(hours=rng.randint(0, 365 * 24))
        exs.append(Exclusion(rng.choice(users), s, s + timedelta(hours=rng.randint(4, 24 * 10)), id=i))
    n = len(rotation_shifts(spec, exs, [], since, until))
    t = best_of(lambda: rotation_shifts(spec, exs, [], since, until), 50)
    print(f"  rotation_shifts 2026: {t * 1e3:6.2f} ms for {n} segments  target < 5 ms")


def bench_scaling() -> None:
    print("== scaling: daily, 2 positions, 4 people, Europe/Berlin ==")
    tz = ZoneInfo("Europe/Berlin")
    windows = [
        ("1 week", timedelta(weeks=1)),
        ("1 month", timedelta(days=30)),
        ("1 year", timedelta(days=365)),
        ("5 years", timedelta(days=5 * 365)),
    ]
    # One exclusion and one override per week over the whole 5-year horizon.
    rng = random.Random(3)
    busy_ex, busy_ov = [], []
    for w in range(5 * 53):
        s = NOW + timedelta(weeks=w, hours=rng.randint(0, 150))
        busy_ex.append(Exclusion(rng.randint(1, 4), s, s + timedelta(hours=30), id=w))
        s = NOW + timedelta(weeks=w, hours=rng.randint(0, 150))
        busy_ov.append(Override(1, 9, s, s + timedelta(hours=4), position="primary", id=w))
    print("  anchor age  load            oncall_at*  " + "  ".join(f"{name:>9}" for name, _ in windows))
    for age_label, age in (
        ("1 day", timedelta(days=1)),
        ("5 years", timedelta(days=5 * 365)),
    ):
        anchor = (NOW - age).astimezone(tz).replace(hour=9, minute=0, second=0, microsecond=0)
        spec = RotationSpec(
            1,
            1,
            "Europe/Berlin",
            ("primary", "secondary"),
            (Era(anchor, anchor, "days", 1, (1, 2, 3, 4)),),
        )
        era = schedule._compile(spec).eras[0]

        def now_uncached(spec=spec, era=era):
            era.memo = era.seg_memo = None  # force the full lookup every time
            oncall_at(spec, [], [], NOW)

        t_now = best_of(now_uncached, 300)
        for load, exs, ovs in (("plain", [], []), ("+1 ex/ov/week", busy_ex, busy_ov)):
            cells = []
            for _, length in windows:
                reps = 20 if length < timedelta(days=400) else 5
                t = best_of(
                    lambda spec=spec, length=length, exs=exs, ovs=ovs: rotation_shifts(
                        spec, exs, ovs, NOW, NOW + length
                    ),
                    reps,
                )
                cells.append(f"{t * 1e3:7.2f}ms")
            print(f"  {age_label:<11} {load:<15} {t_now * 1e6:7.1f} us  " + "  ".join(f"{c:>9}" for c in cells))
    print("  * oncall_at with the per-era memos cleared before every call")
    print("  per-day cost = figure / 7, 30, 365, 1825 days: flat => linear in window;")
    print("  same row for 1 day vs 5 years old => independent of rotation age")


def calibrate() -> None:
    # Machine speed reference: a bare datetime + timedelta addition.
    t, d = NOW, timedelta(hours=1)
    per = best_of(lambda: [t + d for _ in range(10_000)], 20) / 10_000
    print(f"python {sys.version.split()[0]}; calibration: datetime + timedelta = {per * 1e9:.0f} ns")


if __name__ == "__main__":
    calibrate()
    print(
        f"clock: {'CPU (process_time)' if CLOCK is time.process_time else 'wall (perf_counter)'}; "
        f"load average {__import__('os').getloadavg()[0]:.1f}"
    )
    bench_now()
    bench_year()
    bench_scaling()
