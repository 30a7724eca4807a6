"""Profile PagerDuty trigger intake in-process: the request (through config.wsgi.application, as
gunicorn calls it) and the inbox drain, with real PostgreSQL and Redis and no HTTP server.

    .venv/bin/python bench/profile_intake.py [--events 3000] [--keys 200] [--profile out.prof]
                                             [--drain-profile out.prof] [--batch 100]

Prints SQL statements per request, then per-event CPU time of the web process and of its PostgreSQL
backend for the request path, and the same for the drain (repeated triggers, i.e. the dedup path).
CPU time, not wall time, so the figures hold on a shared machine. With --profile / --drain-profile
writes cProfile stats of either side (top functions printed).
"""

import argparse
import cProfile
import io
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

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

URL = "/integrations/pagerduty/v2/enqueue"


class Recorder:
    """Records SQL through an execute wrapper."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)


def _backend_cpu(pid: int) -> float:
    """utime + stime of a local PostgreSQL backend (Linux /proc), in seconds; 0 if not visible."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> tuple[float, float]:
    return time.process_time(), _backend_cpu(pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--profile", default="")
    parser.add_argument("--drain-profile", default="")
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="drain batch size (default BACKSTOP_INBOX_BATCH; under load a kick finds ~100 events)",
    )
    args = parser.parse_args()
    connection.settings_dict["TEST"]["NAME"] = f"test_{connection.settings_dict['NAME']}_profile"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    # As in production (base settings): keep the connection across requests; Redis is the cache.
    connection.settings_dict["CONN_MAX_AGE"] = 60
    redis_cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.CELERY_BROKER_URL,
            "KEY_PREFIX": settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] + "profile",
        }
    }
    try:
        from config.celery import app
        from config.wsgi import application
        from escalations.intake import drain as intake_drain
        from escalations.models import Integration
        from rotations.models import Team

        team = Team.objects.create(name="Bench", slug="bench")
        key = Integration.objects.create(team=team, name="bench", kind="pagerduty").key

        def body(n: int) -> bytes:
            return json.dumps(
                {
                    "routing_key": key,
                    "event_action": "trigger",
                    "dedup_key": f"bench-{n % args.keys}",
                    "payload": {
                        "summary": f"Bench alert {n % args.keys}",
                        "source": "bench",
                        "severity": "error",
                        "custom_details": {"n": n},
                    },
                }
            ).encode()

        def start_response(status, headers):
            assert status.startswith("202"), status

        def post(n: int) -> None:
            data = body(n)
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": URL,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_HOST": "127.0.0.1",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(data),
                "wsgi.errors": sys.stderr,
                "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(data)),
            }
            response = application(environ, start_response)
            b"".join(response)
            response.close()

        with override_settings(BACKSTOP_INTAKE_RATE="1000000/s", CACHES=redis_cache):
            recorder = Recorder()
            with connection.execute_wrapper(recorder):
                post(0)
            print(f"SQL per request: {len(recorder.sql)}")
            for sql in recorder.sql:
                print("   ", sql[:160])
            for n in range(1, args.keys):  # open every incident: the timed drain is the dedup path
                post(n)
            intake_drain.inbox_drain()
            backend = connection.cursor().connection.info.backend_pid

            prof = cProfile.Profile() if args.profile else None
            t, (c, pg) = time.perf_counter(), _cpu(backend)
            if prof:
                prof.enable()
            for n in range(args.events):
                post(n)
            if prof:
                prof.disable()
            wall = time.perf_counter() - t
            c2, pg2 = _cpu(backend)
            print(
                f"request: {args.events} PagerDuty triggers, {wall / args.events * 1e3:.2f} ms wall, CPU per event "
                f"{(c2 - c) / args.events * 1e3:.3f} ms (Python) + {(pg2 - pg) / args.events * 1e3:.3f} ms "
                f"(PostgreSQL); load average {os.getloadavg()[0]:.1f}"
            )

            batch = args.batch or settings.BACKSTOP_INBOX_BATCH
            dprof = cProfile.Profile() if args.drain_profile else None
            recorder = Recorder()
            t, (c, pg) = time.perf_counter(), _cpu(backend)
            if dprof:
                dprof.enable()
            with connection.execute_wrapper(recorder):
                applied = intake_drain.inbox_drain(limit=batch)
            if dprof:
                dprof.disable()
            wall = time.perf_counter() - t
            c2, pg2 = _cpu(backend)
            print(
                f"drain: {applied} events in {len(recorder.sql)} SQL statements, {wall / applied * 1e3:.3f} ms wall, "
                f"CPU per event {(c2 - c) / applied * 1e3:.3f} ms (Python) + {(pg2 - pg) / applied * 1e3:.3f} ms "
                f"(PostgreSQL) with batches of {batch}"
            )
        app.control.purge()  # the drain kicks the requests published (no worker runs here)
        for path, p in ((args.profile, prof), (args.drain_profile, dprof)):
            if p:
                p.dump_stats(path)
                pstats.Stats(path).sort_stats("cumulative").print_stats(40)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
