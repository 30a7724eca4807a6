"""Local demo and development: SQLite and the filesystem broker unless the environment says otherwise."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DEBUG", default=True)
BACKSTOP_REQUIRE_STAFF_MFA = env.bool("BACKSTOP_REQUIRE_STAFF_MFA", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The call simulator (/calls/simulate/) signs its requests with the auth token. Without an account
# SID Twilio still counts as "not configured" (escalations.delivery.channels.twilio.twilio_configured), so
# every page stays in the outbox.
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="") or "local-demo-auth-token"
# Where e-mail goes when EMAIL_BACKEND is the file backend (`manage.py devstack` without --verbose).
EMAIL_FILE_PATH = str(VAR_DIR / "mail")

# On the quiet demo console (LOG_LEVEL=WARNING, set by devstack) a person following a link their role may
# not use is not news: Django would print each 403/404 with a traceback. Server errors still show, and
# `bin/run --verbose` shows everything.
LOGGING["loggers"]["django.request"] = {  # type: ignore[index]  # noqa: F405
    "level": "ERROR" if env.str("LOG_LEVEL", default="INFO") == "WARNING" else "WARNING"
}
