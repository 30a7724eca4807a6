"""Portal pages against a big database: server time and query count per page.

Seeds 1,000 teams (rotation, 5 exclusions, 5 overrides each, as bench_oncall_db) and 100,000 incidents
over the last 90 days with their timeline and pages into a throwaway PostgreSQL database, runs the
Insights roll-up as the beat would, then requests each page in-process (Django's test client:
middleware, view, queries, template) as an engineer in five teams and as staff; last, the all-teams
Insights pages without the roll-up.

    .venv/bin/python bench/bench_portal.py [--teams 1000] [--incidents 100000] [--repeat 5]
"""

import argparse
import gc
import math
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
from escalations.models import Incident  # noqa: E402


def seed_incidents(team_ids: list[int], n: int, *, until: datetime | None = None) -> None:
    """n incidents spread over the 90 days before `until` (now: the pages' time filters and Insights
    windows see them), each with the timeline and pages an escalation leaves: the policy's first step
    paging one member (SMS and a call), 15 % reaching a second member, acknowledgements after 20 s to
    30 min and resolutions after 5 min to 2 days (log-uniform), 5 % reassigned."""
    from rotations.models import Membership

    until = until or datetime.now(UTC)
    members: dict[int, list[int]] = {}
    for team_id, user_id in (
        Membership.objects.filter(team_id__in=team_ids).order_by("pk").values_list("team_id", "user_id")
    ):
        members.setdefault(team_id, []).append(user_id)
    rng = random.Random(7)
    statuses = ["resolved"] * 8 + ["acknowledged", "triggered"]
    batch: list = []
    for i in range(n):
        created = until - timedelta(minutes=rng.randint(1, 90 * 24 * 60))
        status = rng.choice(statuses)
        team_id = rng.choice(team_ids)
        primary, secondary = rng.sample(members[team_id], 2)
        acked = created + timedelta(seconds=math.exp(rng.uniform(math.log(20), math.log(1800))))
        resolved = acked + timedelta(seconds=math.exp(rng.uniform(math.log(300), math.log(172800))))
        story = {
            "primary": primary,
            "secondary": secondary if rng.random() < 0.15 else None,
            "reassigned": rng.random() < 0.05,
            "acked": acked if status != "triggered" else None,
            "resolved": resolved if status == "resolved" and resolved < until else None,
        }
        if story["resolved"] is None and status == "resolved":
            status = "acknowledged"
        batch.append(
            (
                Incident(
                    team_id=team_id,
                    title=f"Bench incident {i}",
                    severity=rng.choice(["critical", "error"]),
                    source=rng.choice(["alert", "api", "phone", "manual"]),
                    status=status,
                    created_at=created,
                    triggered_at=created,
                    acknowledged_at=story["acked"],
                    resolved_at=story["resolved"],
                    resolved_by_id=(primary if rng.random() < 0.8 else secondary) if story["resolved"] else None,
                ),
                story,
            )
        )
        if len(batch) == 5000:
            _flush(batch, rng)
    _flush(batch, rng)


def _flush(batch: list, rng: random.Random) -> None:
    from escalations.models import Page, TimelineEvent

    made = Incident.objects.bulk_create([incident for incident, _ in batch])
    events, pages = [], []

    def event(incident: Incident, kind: str, moment: datetime, **data) -> None:
        events.append(TimelineEvent(incident=incident, at=moment, kind=kind, message=f"{kind} bench", data=data))

    def page(incident: Incident, user_id: int, step: int, rule: int, moment: datetime, status: str) -> None:
        pages.append(
            Page(
                incident=incident,
                cycle=0,
                step=step,
                loop=0,
                user_id=user_id,
                rule_index=rule,
                channel=("sms", "voice")[rule],
                destination="+15550000000",
                due_at=moment,
                status=status,
                sent_at=moment + timedelta(seconds=2),
                status_at=moment + timedelta(seconds=9),
            )
        )

    for incident, story in zip(made, (story for _, story in batch), strict=True):
        at = incident.created_at
        event(incident, "created", at)
        event(incident, "step_reached", at, step=0, user_ids=[story["primary"]])
        page(incident, story["primary"], 0, 0, at, "delivered")
        page(incident, story["primary"], 0, 1, at, rng.choice(["answered", "no_answer"]))
        if story["secondary"]:
            event(incident, "step_reached", at + timedelta(minutes=5), step=1, user_ids=[story["secondary"]])
            page(incident, story["secondary"], 1, 0, at + timedelta(minutes=5), "delivered")
        if story["reassigned"]:
            event(incident, "reassigned", at + timedelta(minutes=6))
        if story["acked"]:
            event(incident, "acknowledged", story["acked"])
        if story["resolved"]:
            event(incident, "resolved", story["resolved"])
    TimelineEvent.objects.bulk_create(events, batch_size=5000)
    Page.objects.bulk_create(pages, batch_size=5000)
    batch.clear()


def _measure(client: Client, label: str, who: str, path: str, repeat: int) -> None:
    client.get(path)  # warm-up, not timed: template compilation and the first query plans
    times, cpu, queries, status = [], [], 0, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start, start_cpu = clock.perf_counter(), clock.process_time()
            response = client.get(path)
            times.append((clock.perf_counter() - start) * 1000)
            cpu.append((clock.process_time() - start_cpu) * 1000)
        queries, status = len(ctx.captured_queries), response.status_code
    print(
        f"{label:<30}{who:<10}{statistics.median(times):>10.1f}{statistics.median(cpu):>8.1f}"
        f"{max(times):>9.1f}{queries:>9}  {status}"
    )


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

        from portal.insights import rollup
        from portal.models import InsightsRollup, User
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
            ("Now", "/"),
            ("Incidents", "/incidents/"),
            ("Incidents (mine, open)", "/incidents/?status=triggered"),
            ("Incident detail", f"/incidents/{incident.pk}/"),
            ("My schedule", "/schedule/"),
            ("Profile", "/profile/"),
            ("Teams", "/teams/"),
            ("Team", f"/teams/{team.slug}/"),
            ("Calendar (week)", f"/teams/{team.slug}/calendar/"),
            ("Calendar (month)", f"/teams/{team.slug}/calendar/?view=month"),
            ("Insights 30 d", "/insights/?days=30"),
            ("API incidents", "/api/v1/incidents/"),
            ("API on-call", f"/api/v1/oncall/?team={team.pk}"),
            ("Insights 90 d", "/insights/?days=90"),
        ]
        # What the beat does every few minutes (portal.insights.rollup): the first run writes every row, the
        # next finds them unchanged.
        for label in ("insights roll-up (first run)", "insights roll-up (next run)"):
            start, start_cpu = clock.perf_counter(), clock.process_time()
            run = rollup.insights_rollup_refresh(now=datetime.now(UTC))
            print(
                f"{label}: {(clock.perf_counter() - start) * 1000:.0f} ms wall, "
                f"{(clock.process_time() - start_cpu) * 1000:.0f} ms CPU here; {run.created} rows written, "
                f"{run.unchanged} unchanged"
            )
        # Wall time includes PostgreSQL; CPU is this process only (the steadier figure on a busy box).
        print(f"{'page':<30}{'as':<10}{'median ms':>10}{'cpu ms':>8}{'max ms':>9}{'queries':>9}  status")
        staff_only = [
            ("Insights 30 d, all teams", "/insights/?days=30&team=all"),
            ("Insights 90 d, all teams", "/insights/?days=90&team=all"),
            ("Insights CSV 90 d, all", "/insights.csv?days=90&team=all"),
            ("Calls (staff)", "/calls/"),
        ]
        clients = {}
        for who, user in (("engineer", engineer), ("staff", staff)):
            clients[who] = Client()
            clients[who].force_login(user)
            for label, path in pages + (staff_only if who == "staff" else []):
                _measure(clients[who], label, who, path, args.repeat)
        # The same without the roll-up (never run, or a day's rows not made yet): the whole period live.
        InsightsRollup.objects.all().delete()
        for label, path in staff_only[:2]:
            _measure(clients["staff"], label.replace("Insights", "No roll-up:"), "staff", path, args.repeat)
        stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, {stamp}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
