"""Production: refuses to start without real secrets, PostgreSQL and a real broker."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import CELERY_BROKER_TRANSPORT_OPTIONS, DATABASES, EMAIL_BACKEND, env

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production.")

SECRET_KEY = env.str("SECRET_KEY", default="")
if len(SECRET_KEY) < 40 or SECRET_KEY.startswith("insecure"):
    raise ImproperlyConfigured("Set SECRET_KEY to a random string of at least 40 characters.")
if not env.str("DATABASE_URL", default=""):
    raise ImproperlyConfigured("Set DATABASE_URL (PostgreSQL) in production.")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Production needs PostgreSQL: row locks keep pages from doubling.")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
if not CELERY_BROKER_URL or CELERY_BROKER_URL.startswith("filesystem://"):
    raise ImproperlyConfigured("Set CELERY_BROKER_URL (Redis) in production.")
# Password-reset and sign-in links must never land in a log or a process's memory: a backend that
# prints or keeps mail is for the demo and the tests, unless an operator says otherwise.
LOG_ONLY_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
}
EMAIL_BACKEND = EMAIL_BACKEND or "django.core.mail.backends.console.EmailBackend"
if EMAIL_BACKEND in LOG_ONLY_EMAIL_BACKENDS and not env.bool("BACKSTOP_ALLOW_CONSOLE_EMAIL", default=False):
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND is {EMAIL_BACKEND}, which writes password-reset links to the console, memory or "
        "a file. Set EMAIL_BACKEND (e.g. django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST), or "
        "set BACKSTOP_ALLOW_CONSOLE_EMAIL=true to accept that."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
_redis_cache = CELERY_BROKER_URL.replace("redis://", "rediscache://", 1)
if not CELERY_BROKER_URL.startswith("sentinel://") or env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache("CACHE_URL", default=_redis_cache)}
else:
    # The cache follows the broker's Sentinels too (a list: Django splits a LOCATION string at ";").
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": [CELERY_BROKER_URL],
            "OPTIONS": {
                "pool_class": "config.redis_sentinel.SentinelPool",
                "master_name": CELERY_BROKER_TRANSPORT_OPTIONS["master_name"],
            },
        }
    }
# One JSON object per log line in production (LOG_FORMAT=plain for lines meant for people).
LOGGING["handlers"]["console"]["formatter"] = env.str("LOG_FORMAT", default="json")  # type: ignore[index]  # noqa: F405
