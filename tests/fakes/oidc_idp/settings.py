"""Settings of the test-only OpenID Connect provider (django-oidc-provider in its own process).

Everything it needs comes from environment variables set by `tests.fakes.oidc_idp.launcher`: its data
folder (SQLite file, user list) and its public address. It shares nothing with Backstop: its own
database, its own session cookie name, its own secret key.
"""

import os
from pathlib import Path

DATA_DIR = Path(os.environ["OIDC_IDP_DATA_DIR"])
SECRET_KEY = "test-oidc-idp-" + "k" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "oidc_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.fakes.oidc_idp.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "idp.sqlite3")}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Backstop's test client and the IdP both live on 127.0.0.1: distinct cookie names keep the sessions apart.
SESSION_COOKIE_NAME = "idp_sessionid"
CSRF_COOKIE_NAME = "idp_csrftoken"
LOGIN_URL = "/login/"
USE_TZ = True
TIME_ZONE = "UTC"

SITE_URL = os.environ["OIDC_IDP_SITE_URL"]
OIDC_USERINFO = "tests.fakes.oidc_idp.claims.userinfo"
OIDC_IDTOKEN_PROCESSING_HOOK = "tests.fakes.oidc_idp.claims.idtoken_amr"
OIDC_IDTOKEN_INCLUDE_CLAIMS = True
OIDC_SKIP_CONSENT_EXPIRE = 0
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
