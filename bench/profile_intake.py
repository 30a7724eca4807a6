"""Profile PagerDuty trigger intake in-process (Django test client, real PostgreSQL, no HTTP server).

    .venv/bin/python bench/profile_intake.py [--events 2000] [--keys 200] [--profile out.prof]

Prints SQL statements per event (first event of a key and repeated triggers), per-event wall and CPU
time, and with --profile writes cProfile stats (top functions printed).
"""

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

URL = "/integrations/pagerduty/v2/enqueue"


class Recorder:
    """Records SQL through an execute wrapper (the test client resets the debug query log per request)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    connection.settings_dict["TEST"]["NAME"] = f"test_{connection.settings_dict['NAME']}_profile"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    # As in production (base settings): keep the connection across requests.
    connection.settings_dict["CONN_MAX_AGE"] = 60
    try:
        from escalations.models import Integration
        from rotations.models import Team

        team = Team.objects.create(name="Bench", slug="bench")
        key = Integration.objects.create(team=team, name="bench", kind="pagerduty").key
        client = Client()

        def body(n: int) -> str:
            return json.dumps({
                "routing_key": key, "event_action": "trigger", "dedup_key": f"bench-{n % args.keys}",
                "payload": {"summary": f"Bench alert {n % args.keys}", "source": "bench", "severity": "error",
                            "custom_details": {"n": n}},
            })

        def post(n: int) -> None:
            r = client.post(URL, body(n), content_type="application/json")
            assert r.status_code == 202, r.content

        with override_settings(BACKSTOP_INTAKE_RATE="1000000/s"):
            first, repeat = Recorder(), Recorder()
            with connection.execute_wrapper(first):
                post(0)
            with connection.execute_wrapper(repeat):
                post(args.keys)
            for n in range(1, args.keys):  # open every incident: the timed loop is the dedup path
                post(n)
            print(f"SQL per event: first trigger {len(first.sql)}, repeated trigger {len(repeat.sql)}")
            for sql in repeat.sql:
                print("   ", sql[:160])
            prof = cProfile.Profile() if args.profile else None
            t, c = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            for n in range(args.events):
                post(n)
            if prof:
                prof.disable()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
        print(f"{args.events} repeated triggers: {wall / args.events * 1e3:.2f} ms wall, "
              f"{cpu / args.events * 1e3:.2f} ms CPU per event (test client, no HTTP); "
              f"load average {os.getloadavg()[0]:.1f}")
        if prof:
            prof.dump_stats(args.profile)
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
