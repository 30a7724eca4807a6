"""Run the web server, the Celery workers and Celery beat together; Ctrl-C stops them all.

The workers are laid out as in production (README, Deployment; config/queues.py): one for the escalation
engine's queue alone, one for deliveries and everything else."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from config.queues import DISPATCH_QUEUES, WORKER_QUEUES


class Command(BaseCommand):
    help = "Start web, workers and beat for local use. Ctrl-C stops them all."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr: str, **options) -> None:
        python = sys.executable
        env = dict(os.environ)
        celery_worker = [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--pool=threads",
        ]
        commands = {
            "web": [python, "manage.py", "runserver", addr, "--noreload"],
            "dispatch": [*celery_worker, "-Q", DISPATCH_QUEUES, "-n", "demo-dispatch@%h"],
            "worker": [*celery_worker, "-Q", WORKER_QUEUES, "-n", "demo@%h"],
            "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"],
        }
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"Backstop is up: http://{addr}/  (Ctrl-C stops web, workers and beat)"))

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
