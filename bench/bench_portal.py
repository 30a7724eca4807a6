"""Portal pages against a big database: server time and query count per page.

Seeds 1,000 teams (rotation, 5 exclusions, 5 overrides each, as bench_oncall_db) and 100,000 incidents
over the last 90 days with timeline rows into a throwaway PostgreSQL database, then requests each page
in-process (Django's test client: middleware, view, queries, template) as an engineer in five teams and
as staff.

    .venv/bin/python bench/bench_portal.py [--teams 1000] [--incidents 100000] [--repeat 5]
"""

import argparse
import gc
import os
import random
import statistics
import sys
import time as clock
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()
# As the web process does once loaded (config/wsgi.py): start-up objects out of full GC passes.
gc.freeze()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.bench_oncall_db import seed  # noqa: E402


def seed_incidents(team_ids: list[int], n: int, *, until: datetime | None = None) -> None:
    """n incidents spread over the 90 days before `until` (now: the pages' time filters and Insights
    windows see them)."""
    from escalations.models import Incident

    until = until or datetime.now(UTC)
    rng = random.Random(7)
    statuses = ["resolved"] * 8 + ["acknowledged", "triggered"]
    batch, events = [], []
    for i in range(n):
        created = until - timedelta(minutes=rng.randint(1, 90 * 24 * 60))
        status = rng.choice(statuses)
        batch.append(Incident(
            team_id=rng.choice(team_ids), title=f"Bench incident {i}", severity=rng.choice(["critical", "error"]),
            source=rng.choice(["alert", "api", "phone", "manual"]), status=status, created_at=created,
            triggered_at=created, acknowledged_at=created + timedelta(minutes=3) if status != "triggered" else None,
            resolved_at=created + timedelta(minutes=40) if status == "resolved" else None,
        ))
        if len(batch) == 5000:
            _flush(batch, events)
    _flush(batch, events)


def _flush(batch, events) -> None:
    from escalations.models import Incident, TimelineEvent

    made = Incident.objects.bulk_create(batch)
    TimelineEvent.objects.bulk_create(
        TimelineEvent(incident=i, at=i.created_at, kind=k, message=f"{k} bench")
        for i in made for k in ("created", "step_reached")
    )
    batch.clear()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    connection.settings_dict["TEST"]["NAME"] = f"test_{connection.settings_dict['NAME']}_portalbench"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from allauth.mfa.models import Authenticator

        from escalations.models import Incident
        from portal.models import User
        from rotations.models import Membership, Team

        t0 = clock.perf_counter()
        team_ids = seed(args.teams)
        seed_incidents(team_ids, args.incidents)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # planner statistics as a live database has them, not autovacuum's timing
        print(f"seeded {args.teams} teams and {args.incidents} incidents in {clock.perf_counter() - t0:.1f}s")
        engineer = User.objects.create_user("engineer@bench.example", "pw", full_name="Bench Engineer")
        for tid in team_ids[:5]:
            Membership.objects.create(team_id=tid, user=engineer, role="manager")
        staff = User.objects.create_user("staff@bench.example", "pw", is_staff=True, full_name="Bench Staff")
        Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "x"})
        team = Team.objects.get(pk=team_ids[0])
        incident = Incident.objects.filter(team=team).order_by("-created_at").first()
        pages = [
            ("Now", "/"), ("Incidents", "/incidents/"), ("Incidents (mine, open)", "/incidents/?status=triggered"),
            ("Incident detail", f"/incidents/{incident.pk}/"), ("My schedule", "/schedule/"), ("Profile", "/profile/"),
            ("Teams", "/teams/"), ("Team", f"/teams/{team.slug}/"),
            ("Calendar (week)", f"/teams/{team.slug}/calendar/"),
            ("Calendar (month)", f"/teams/{team.slug}/calendar/?view=month"), ("Insights 30 d", "/insights/?days=30"),
            ("API incidents", "/api/v1/incidents/"), ("API on-call", f"/api/v1/oncall/?team={team.pk}"),
        ]
        # Wall time includes PostgreSQL; CPU is this process only (the steadier figure on a busy box).
        print(f"{'page':<26}{'as':<10}{'median ms':>10}{'cpu ms':>8}{'max ms':>9}{'queries':>9}  status")
        for who, user in (("engineer", engineer), ("staff", staff)):
            client = Client()
            client.force_login(user)
            staff_only = [("Insights 30 d, all teams", "/insights/?days=30&team=all"), ("Calls (staff)", "/calls/")]
            for label, path in pages + (staff_only if who == "staff" else []):
                client.get(path)  # warm-up, not timed: template compilation and the first query plans
                times, cpu, queries, status = [], [], 0, 0
                for _ in range(args.repeat):
                    with CaptureQueriesContext(connection) as ctx:
                        start, start_cpu = clock.perf_counter(), clock.process_time()
                        response = client.get(path)
                        times.append((clock.perf_counter() - start) * 1000)
                        cpu.append((clock.process_time() - start_cpu) * 1000)
                    queries, status = len(ctx.captured_queries), response.status_code
                print(f"{label:<26}{who:<10}{statistics.median(times):>10.1f}{statistics.median(cpu):>8.1f}"
                      f"{max(times):>9.1f}{queries:>9}  {status}")
        stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, {stamp}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
