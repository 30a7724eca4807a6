"""`manage.py devstack` (bin/run): a quiet console by default, everything with --verbose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portal.management.commands.devstack import devstack_commands

ROOT = Path(__file__).resolve().parents[2]


def test_quiet_by_default(settings):
    settings.EMAIL_FILE_PATH = "/tmp/backstop-mail"
    commands, env = devstack_commands(addr="127.0.0.1:8000", verbose=False, environ={})
    for name in ("dispatch", "worker", "beat"):
        assert "--loglevel=WARNING" in commands[name] and "--quiet" in commands[name], name
    assert env["LOG_LEVEL"] == "WARNING"
    assert env["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    # An operator's own choices stay.
    _, env = devstack_commands(
        addr="127.0.0.1:8000", verbose=False, environ={"LOG_LEVEL": "ERROR", "EMAIL_BACKEND": "x.Backend"}
    )
    assert (env["LOG_LEVEL"], env["EMAIL_BACKEND"]) == ("ERROR", "x.Backend")


def test_verbose_shows_everything(settings):
    settings.EMAIL_FILE_PATH = "/tmp/backstop-mail"
    commands, env = devstack_commands(addr="127.0.0.1:8000", verbose=True, environ={})
    for name in ("dispatch", "worker", "beat"):
        assert "--loglevel=INFO" in commands[name] and "--quiet" not in commands[name], name
    assert env["LOG_LEVEL"] == "INFO" and "EMAIL_BACKEND" not in env


def test_at_warning_the_event_lines_still_show(tmp_path):
    """The local settings' logging as devstack's children get it (LOG_LEVEL=WARNING)."""
    script = (
        "import django, logging; django.setup()\n"
        "logging.getLogger('backstop.events').info('EVENT incident opened')\n"
        "logging.getLogger('celery.beat').info('NOISE beat tick')\n"
        "logging.getLogger('django.server').info('NOISE GET / 200')\n"
        "logging.getLogger('escalations.delivery').warning('WARNING kept')\n"
        "from config.celery import app; app.send_task('escalations.tasks.sweep')  # as the web process does\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOG_LEVEL", "EVENTS_LOG"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "LOG_LEVEL": "WARNING",
        "BACKSTOP_VAR_DIR": str(tmp_path),
    }
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "EVENT incident opened" in proc.stderr and "WARNING kept" in proc.stderr
    assert "NOISE" not in proc.stderr
    assert "No hostname was supplied" not in proc.stderr
