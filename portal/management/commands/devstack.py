"""Run the web server, the Celery workers and Celery beat together; Ctrl-C stops them all.

The workers are laid out as in production (README, Deployment; config/queues.py): one for the escalation
engine's queue alone, one for deliveries and everything else.

The console is quiet by default: warnings and errors, and one line per incident opened, acknowledged or
resolved and per page sent (escalations.incidents.events). Beat and the workers would otherwise log every sweep
and drain, several lines a second. --verbose shows everything (Celery's banners, its INFO lines for
every task, each web request)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from django.conf import settings
from django.core.management.base import BaseCommand

from config.queues import DISPATCH_QUEUES, WORKER_QUEUES


def devstack_commands(
    *, addr: str, verbose: bool, environ: Mapping[str, str]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The four processes' command lines and their environment."""
    python = sys.executable
    # The children run with this command's settings (manage.py and Celery default to production).
    env = {**environ, "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE}
    # The children's Django logging (config.settings.base) reads LOG_LEVEL; Celery sets its own.
    level = "INFO" if verbose else env.get("LOG_LEVEL") or "WARNING"
    env["LOG_LEVEL"] = level
    if not verbose and getattr(settings, "EMAIL_FILE_PATH", None):
        # The console backend would print every e-mail page in full, burying the one-line events.
        env.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    celery = [python, "-m", "celery", "-A", "config", *([] if verbose else ["--quiet"])]
    celery_worker = [*celery, "worker", f"--loglevel={level}", "--concurrency=2", "--pool=threads"]
    commands = {
        "web": [python, "manage.py", "runserver", addr, "--noreload"],
        "dispatch": [*celery_worker, "-Q", DISPATCH_QUEUES, "-n", "demo-dispatch@%h"],
        "worker": [*celery_worker, "-Q", WORKER_QUEUES, "-n", "demo@%h"],
        "beat": [*celery, "beat", f"--loglevel={level}"],
    }
    return commands, env


class Command(BaseCommand):
    help = "Start web, workers and beat for local use. Ctrl-C stops them all."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="Log everything at INFO: Celery's banners and every task and beat tick, each web request.",
        )

    def handle(self, *args, addr: str, verbose: bool, **options) -> None:
        commands, env = devstack_commands(addr=addr, verbose=verbose, environ=os.environ)
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"Backstop is up: http://{addr}/  (Ctrl-C stops web, workers and beat)"))
        if not verbose:
            self.stdout.write(
                "Console: warnings, and one line per incident opened, acknowledged or resolved and "
                "per page sent; bin/run --verbose shows everything."
            )
        if env.get("EMAIL_BACKEND", "").endswith("filebased.EmailBackend"):
            self.stdout.write(f"E-mail is written to files in {getattr(settings, 'EMAIL_FILE_PATH', '')}/")

        def stop(*_):
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()

        signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
        # Explicitly, because a shell starting us in the background hands us SIGINT ignored.
        signal.signal(signal.SIGINT, lambda *_: (stop(), sys.exit(0)))
        try:
            while True:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping the others.")
                        stop()
                        sys.exit(proc.returncode or 1)
                time.sleep(0.5)
        except KeyboardInterrupt:
            stop()
