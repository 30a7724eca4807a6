"""Entry points that forget DJANGO_SETTINGS_MODULE get production settings, never the DEBUG demo."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# No DJANGO_SETTINGS_MODULE and none of production's secrets: production must refuse to start.
BARE_ENV = {"PATH": "/usr/bin:/bin", "BACKSTOP_VAR_DIR": "/tmp/backstop-settings-default-test"}


def _run(code: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(code, cwd=ROOT, env=BARE_ENV, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "manage.py", "check"],
        [sys.executable, "-c", "import config.wsgi"],
    ],
    ids=["manage.py", "config.wsgi"],
)
def test_entry_points_default_to_production_settings(argv):
    result = _run(argv)
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr, result.stderr[-2000:]


def test_celery_app_defaults_to_production_settings():
    result = _run([sys.executable, "-c", "import os, config.celery; print(os.environ['DJANGO_SETTINGS_MODULE'])"])
    assert result.stdout.strip() == "config.settings.production", result.stderr[-2000:]


def test_devstack_children_inherit_the_chosen_settings():
    from django.conf import settings

    from portal.management.commands import devstack

    for verbose in (False, True):
        _, env = devstack.devstack_commands(addr="127.0.0.1:0", verbose=verbose, environ={})
        assert env["DJANGO_SETTINGS_MODULE"] == settings.SETTINGS_MODULE
