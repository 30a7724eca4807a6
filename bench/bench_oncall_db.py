"""Benchmark teams_oncall_get over 1,000 teams against real PostgreSQL.

Seeds 1,000 teams x 1 rotation (2 positions, 4 participants) x 5 exclusions x 5 overrides into a
throwaway database (created and dropped here via Django's test-database machinery), then times
`teams_oncall_get` including its queries.

    .venv/bin/python bench/bench_oncall_db.py [--teams 1000] [--repeat 7]
"""

import argparse
import gc
import os
import statistics
import sys
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()
# As the web process does once loaded (config/wsgi.py): start-up objects out of full GC passes.
gc.freeze()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

AT = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def seed(n_teams: int) -> list[int]:
    from portal.models import User
    from rotations.models import Exclusion, Membership, Override, Rotation, RotationEra, RotationParticipant, Team

    teams = Team.objects.bulk_create(Team(name=f"Bench {i}", slug=f"bench-{i}") for i in range(n_teams))
    users = User.objects.bulk_create(
        User(email=f"bench{i}@example.com", full_name=f"Bench User {i}", password="!") for i in range(n_teams * 4)
    )
    Membership.objects.bulk_create(Membership(team=teams[i // 4], user=u, role="engineer") for i, u in enumerate(users))
    rotations = Rotation.objects.bulk_create(
        Rotation(
            team=t,
            name="Main",
            time_zone=("Europe/Berlin", "America/New_York", "Asia/Tokyo")[i % 3],
            positions=["primary", "secondary"],
        )
        for i, t in enumerate(teams)
    )
    eras = RotationEra.objects.bulk_create(
        RotationEra(
            rotation=r,
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
            start_date=date(2026, 1, 5),
            handoff_time=time(9),
            shift_unit="weeks",
            shift_length=1,
        )
        for r in rotations
    )
    RotationParticipant.objects.bulk_create(
        RotationParticipant(era=era, user=users[t * 4 + k], order=k) for t, era in enumerate(eras) for k in range(4)
    )
    exclusions, overrides = [], []
    for t, rotation in enumerate(rotations):
        for k in range(5):
            # Spread around AT so some cover `at` (cover path) and some lie later in the same shift.
            start = AT + timedelta(hours=-2 + 14 * k)
            exclusions.append(Exclusion(user=users[t * 4 + k % 4], start=start, end=start + timedelta(hours=6)))
            ostart = AT + timedelta(hours=-1 + 10 * k)
            overrides.append(
                Override(
                    rotation=rotation,
                    user=users[t * 4 + (k + 2) % 4],
                    start=ostart,
                    end=ostart + timedelta(hours=3),
                    position=("primary", "secondary")[k % 2],
                )
            )
    Exclusion.objects.bulk_create(exclusions)
    Override.objects.bulk_create(overrides)
    return [t.pk for t in teams]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    # Own database name so this never collides with a running test suite in the same checkout.
    connection.settings_dict["TEST"]["NAME"] = f"test_{connection.settings_dict['NAME']}_bench"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from rotations.selectors import teams_oncall_get, teams_oncall_rows_get

        t0 = clock.perf_counter()
        team_ids = seed(args.teams)
        print(f"seeded {args.teams} teams in {clock.perf_counter() - t0:.1f}s")
        for label, fn in (("teams_oncall_get", teams_oncall_get), ("teams_oncall_rows_get", teams_oncall_rows_get)):
            timings, cpu, queries = [], [], 0
            for _ in range(args.repeat):
                with CaptureQueriesContext(connection) as ctx:
                    t, c = clock.perf_counter(), clock.process_time()
                    result = fn(team_ids=team_ids, at=AT)
                    timings.append((clock.perf_counter() - t) * 1000)
                    cpu.append((clock.process_time() - c) * 1000)
                queries = len(ctx.captured_queries)
            assert len(result) == args.teams
            # Wall time includes PostgreSQL; CPU is this process only (the honest figure on a busy box).
            print(
                f"{label}: {args.teams} teams, {queries} queries, wall median {statistics.median(timings):.1f} ms "
                f"(min {min(timings):.1f}, max {max(timings):.1f}), CPU median {statistics.median(cpu):.1f} ms"
            )
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        reasons = {}
        for positions in teams_oncall_get(team_ids=team_ids, at=AT).values():
            for shifts in positions.values():
                for sh in shifts:
                    reasons[str(sh.reason)] = reasons.get(str(sh.reason), 0) + 1
        print(f"reasons at {AT.isoformat()}: {reasons}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
