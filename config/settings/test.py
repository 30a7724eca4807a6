"""Tests: real PostgreSQL and Redis, isolated per checkout so parallel clones never collide."""

import hashlib
import os

from .base import *  # noqa: F403
from .base import BASE_DIR, env

_checkout = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:8]
# pytest-xdist workers each get their own test database; give them their own broker keys too.
_slot = f"{_checkout}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-" + "x" * 20
DATABASES = {"default": env.db("TEST_DATABASE_URL", default=f"postgres://postgres@127.0.0.1:5432/backstop_{_checkout}")}
DATABASES["default"]["CONN_MAX_AGE"] = 0
CELERY_BROKER_URL = env.str("TEST_CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300, "global_keyprefix": f"backstop-test-{_slot}:"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
BACKSTOP_REQUIRE_STAFF_MFA = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
TWILIO_ACCOUNT_SID = "AC" + "0" * 32
TWILIO_AUTH_TOKEN = "test-auth-token"
TWILIO_FROM_NUMBER = "+15005550006"
PUBLIC_BASE_URL = "https://backstop.example.com"
ACCOUNT_RATE_LIMITS = {"login_failed": "5/5m/key"}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
