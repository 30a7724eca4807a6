"""Tests of the local demo's database: SQLite, as `bin/run` uses it (tests/sqlite, marker `sqlite`).

Run with `pytest --ds=config.settings.test_sqlite -m sqlite tests/sqlite`; the main suite does this
in a subprocess (tests/sqlite/test_runner.py), since one pytest process has one database.
"""

from .test import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        "CONN_MAX_AGE": 0,
        "ATOMIC_REQUESTS": False,
    }
}
