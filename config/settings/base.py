"""Settings shared by every environment. Values come from the environment (django-environ).

With no environment set at all, Backstop runs on a SQLite file and a filesystem Celery broker, so
the portal, a worker and beat start on a machine with nothing installed but Python.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("BACKSTOP_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))

SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-only-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The URL Twilio uses to reach us. Twilio signs the URL it requested, so behind a TLS proxy the
# signature must be checked against this, not against what Django sees.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "portal",
    "rotations",
    "escalations",
]

MIDDLEWARE = [
    # First, so every log line of the request carries its id (config.log_json).
    "config.log_json.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.UserTimezoneMiddleware",
    "portal.middleware.StaffMfaRequiredMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.backstop",
            ],
        },
    },
]

DATABASES = {
    "default": environ.Env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'backstop.sqlite3'}"
    ),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A worker, beat and the web server share one file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "portal.auth_backends.StaffPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:now"
LOGOUT_REDIRECT_URL = "account_login"

# django-allauth: e-mail + password, no public sign-up (staff invite people), rate-limited sign-in.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "login": "30/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
# Rate limits count per client address. Behind a reverse proxy every request comes from the proxy, so
# say how to find the client: TRUSTED_PROXY_COUNT = the number of proxies you run in front of Backstop
# that append to X-Forwarded-For (the client is the entry that many from the right), or
# TRUSTED_CLIENT_IP_HEADER = a header your proxy sets to the client address (X-Real-IP,
# CF-Connecting-IP); it wins when both are set. Default: direct connections, REMOTE_ADDR.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = env.str("TRUSTED_CLIENT_IP_HEADER", default="") or None
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Backstop"
# Staff accounts must enrol TOTP before they can use the portal or the admin.
BACKSTOP_REQUIRE_STAFF_MFA = env.bool("BACKSTOP_REQUIRE_STAFF_MFA", default=True)

# --- Single sign-on (OpenID Connect, portal/sso/) ------------------------------------------
# One identity provider (Keycloak, Okta, Entra ID, Google Workspace, ...), named by its issuer URL.
# Unset = no SSO button, passwords only. People are matched to accounts by the e-mail address the IdP
# says it verified; an unverified address never signs anyone in (docs/operations.md, "Single sign-on").
BACKSTOP_OIDC_ISSUER = env.str("BACKSTOP_OIDC_ISSUER", default="").rstrip("/")
BACKSTOP_OIDC_CLIENT_ID = env.str("BACKSTOP_OIDC_CLIENT_ID", default="")
BACKSTOP_OIDC_CLIENT_SECRET = env.str("BACKSTOP_OIDC_CLIENT_SECRET", default="")
BACKSTOP_OIDC_NAME = env.str("BACKSTOP_OIDC_NAME", default="") or "single sign-on"
# Unknown people with a verified e-mail get an account on first sign-in, optionally in one team.
BACKSTOP_OIDC_AUTO_CREATE = env.bool("BACKSTOP_OIDC_AUTO_CREATE", default=False)
BACKSTOP_OIDC_DEFAULT_TEAM = env.str("BACKSTOP_OIDC_DEFAULT_TEAM", default="")
BACKSTOP_OIDC_DEFAULT_ROLE = env.str("BACKSTOP_OIDC_DEFAULT_ROLE", default="viewer")
# Passwords are refused for everyone but the break-glass staff accounts listed here.
BACKSTOP_OIDC_REQUIRED = env.bool("BACKSTOP_OIDC_REQUIRED", default=False)
BACKSTOP_OIDC_BREAK_GLASS_EMAILS = [e.strip().lower() for e in env.list("BACKSTOP_OIDC_BREAK_GLASS_EMAILS", default=[])]
# `amr` values of the IdP's ID token that count as the staff second factor (mfa, otp, hwk, ...); empty = none.
BACKSTOP_OIDC_MFA_AMR = env.list("BACKSTOP_OIDC_MFA_AMR", default=[])
if BACKSTOP_OIDC_ISSUER and not (BACKSTOP_OIDC_CLIENT_ID and BACKSTOP_OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("BACKSTOP_OIDC_ISSUER needs BACKSTOP_OIDC_CLIENT_ID and BACKSTOP_OIDC_CLIENT_SECRET.")
if BACKSTOP_OIDC_REQUIRED and not BACKSTOP_OIDC_ISSUER:
    raise ImproperlyConfigured("BACKSTOP_OIDC_REQUIRED needs BACKSTOP_OIDC_ISSUER (nobody could sign in).")
if BACKSTOP_OIDC_DEFAULT_ROLE not in ("manager", "engineer", "viewer"):
    raise ImproperlyConfigured("BACKSTOP_OIDC_DEFAULT_ROLE must be manager, engineer or viewer.")
SOCIALACCOUNT_ADAPTER = "portal.adapters.SocialAccountAdapter"
# portal.sso.services decides every match, creation and refusal; allauth's own e-mail matching and
# sign-up form stay off.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": "sso",
                "name": BACKSTOP_OIDC_NAME,
                "client_id": BACKSTOP_OIDC_CLIENT_ID,
                "secret": BACKSTOP_OIDC_CLIENT_SECRET,
                "settings": {"server_url": BACKSTOP_OIDC_ISSUER},
            }
        ]
        if BACKSTOP_OIDC_ISSUER
        else [],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Backstop <backstop@localhost>")

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://backstop")}

# --- Twilio -------------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
# Point the SDK at another Twilio-compatible API (the fake used by tests and the chaos run).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
TWILIO_HTTP_TIMEOUT = env.float("TWILIO_HTTP_TIMEOUT", default=10.0)

# --- Contact methods ----------------------------------------------------------------------
# Verification codes cost an SMS or a call each: caps per person and per destination per day, the
# most methods one person may keep, and the countries whose numbers may be added (ISO codes like DE
# or calling codes like +49; empty allows every country).
BACKSTOP_MAX_CONTACT_METHODS = env.int("MAX_CONTACT_METHODS", default=10)
BACKSTOP_VERIFICATION_SENDS_PER_USER_PER_DAY = env.int("VERIFICATION_SENDS_PER_USER_PER_DAY", default=10)
BACKSTOP_VERIFICATION_SENDS_PER_DESTINATION_PER_DAY = env.int("VERIFICATION_SENDS_PER_DESTINATION_PER_DAY", default=5)
BACKSTOP_PHONE_COUNTRIES = env.list("PHONE_COUNTRIES", default=[])

# --- Emergency line -----------------------------------------------------------------------
# New incidents a phone line may open per hour for callers who are not attested known customers;
# beyond it their voicemails join one "call flood" incident for the line (0 = no limit).
BACKSTOP_PHONE_NEW_INCIDENTS_PER_LINE_PER_HOUR = env.int("PHONE_NEW_INCIDENTS_PER_LINE_PER_HOUR", default=10)

# Seconds a one-click acknowledge/resolve link in a paging e-mail stays valid.
BACKSTOP_EMAIL_LINK_MAX_AGE = env.int("EMAIL_LINK_MAX_AGE", default=24 * 3600)
BACKSTOP_SWAP_LINK_MAX_AGE = env.int("SWAP_LINK_MAX_AGE", default=7 * 24 * 3600)

# --- Paging -------------------------------------------------------------------------------
# Per contact-method kind: at most `count` messages per `seconds`; pages beyond that are
# bundled into one message when the window allows another.
BACKSTOP_PAGE_THROTTLE = {
    "sms": {"count": env.int("PAGE_THROTTLE_SMS_COUNT", default=4), "seconds": 60},
    "voice": {"count": env.int("PAGE_THROTTLE_VOICE_COUNT", default=2), "seconds": 120},
    "email": {"count": env.int("PAGE_THROTTLE_EMAIL_COUNT", default=20), "seconds": 60},
}
# A page left in `sending` longer than this is reconciled by the sweep (worker died mid-call).
BACKSTOP_PAGE_STUCK_AFTER = timedelta(seconds=env.int("PAGE_STUCK_AFTER_SECONDS", default=60))
# A failed send is tried again within seconds (escalations/delivery/retry.py): 10 attempts are about a
# minute of trying. After FAILOVER_AFTER failed attempts the person's next contact method is paged too.
BACKSTOP_PAGE_MAX_ATTEMPTS = env.int("PAGE_MAX_ATTEMPTS", default=10)
BACKSTOP_PAGE_FAILOVER_AFTER = env.int("PAGE_FAILOVER_AFTER", default=2)
BACKSTOP_SWEEP_BATCH = env.int("SWEEP_BATCH", default=500)
# A delivery message's Twilio calls go out together from this many threads per worker process: the
# calls are network waits (100-300 ms at Twilio), and one after another they would cap a process at a
# few pages per second.
BACKSTOP_DELIVERY_SEND_THREADS = env.int("DELIVERY_SEND_THREADS", default=16)
# How long a delivery batch waits for its provider calls (Twilio answers in 100-300 ms). A call still
# unanswered then (a provider having a bad day) is settled by its send thread when it answers, so it
# never holds the worker process while other pages fall due. Every hung call holds its process for the
# whole wait: with 5 % of calls hanging, a 1 s wait kept the delivery processes waiting 87 % of the time
# and their queue grew on an idle machine (bench/README.md, chaos run), hence half a second.
BACKSTOP_DELIVERY_SEND_WAIT = timedelta(milliseconds=env.int("DELIVERY_SEND_WAIT_MS", default=500))
# Wake-up messages (engine advances, page deliveries) carry every id due in the same bucket of this
# size; a page is dispatched at most this late by the bucketing itself. A message advances its
# incidents in one transaction, whose fixed cost (~10 queries) dominates when it holds only one or
# two: at 30 escalations/s, 50 ms buckets cost several times the CPU of 250 ms ones.
BACKSTOP_WAKE_GRANULARITY = timedelta(milliseconds=env.int("WAKE_GRANULARITY_MS", default=250))
# After each escalation sweep, incidents falling due within this window get precisely timed wake-up
# messages, so even one whose own message was lost is not left for the next sweep tick. Keep it
# above the sweep interval so consecutive windows overlap.
BACKSTOP_SWEEP_LOOKAHEAD = timedelta(seconds=env.float("SWEEP_LOOKAHEAD_SECONDS", default=2.5))
# The same for pending pages at each page-reconcile run (every 5 s).
BACKSTOP_PAGE_LOOKAHEAD = timedelta(seconds=env.float("PAGE_LOOKAHEAD_SECONDS", default=8))
BACKSTOP_GAP_LOOKAHEAD_DAYS = env.int("GAP_LOOKAHEAD_DAYS", default=14)
BACKSTOP_BEAT_STALE_AFTER = timedelta(seconds=env.int("BEAT_STALE_AFTER_SECONDS", default=120))

# --- Celery -------------------------------------------------------------------------------
# With a host named, kombu does not warn "No hostname was supplied" at every connection.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://localhost//"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
    # Tasks are short and idempotent; redeliver an unacknowledged one after 5 minutes.
    "visibility_timeout": 300,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    # The filesystem transport fails on a missing folder; create them so any command can enqueue.
    for _folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_queue_dir),
            "data_folder_out": str(_queue_dir),
            "processed_folder": str(VAR_DIR / "celery" / "processed"),
            "control_folder": str(VAR_DIR / "celery" / "control"),
            "store_processed": False,
        }
    )
if CELERY_BROKER_URL.startswith("sentinel://"):
    # Redis behind Sentinel (`sentinel://h1:26379;sentinel://h2:26379/0`): kombu asks the Sentinels for
    # the master by name at every (re)connection, so a promoted replica takes over (docs/operations.md).
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = env.str("REDIS_SENTINEL_MASTER", default="mymaster")
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup closes the database connection before and after every task unless this is set
# (it then closes every that many tasks). config/celery.py recycles connections as Django does for
# requests instead, by CONN_MAX_AGE (0 in the tests: a connection per task, so no test sees another's connection state).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Task modules not named tasks.py (autodiscover only finds those).
# Celery's autodiscovery finds `<app>.tasks` only; the escalations rooms keep their tasks in sub-packages.
# (Web processes register them in EscalationsConfig.ready(), since they never run autodiscovery.)
CELERY_IMPORTS = [
    "escalations.incidents.tasks",
    "escalations.delivery.tasks",
    "escalations.intake.tasks",
    "escalations.phone.tasks",
    "escalations.retention.tasks",
    "escalations.monitoring.tasks",
]
# Queues, so that a slow kind of work never holds up a more urgent one:
# * `escalations`: the engine's wake-ups and the escalation sweep. Dispatching a step costs a couple of
#   milliseconds; it must never wait behind deliveries, so production runs a dedicated worker on it.
# * `deliveries`: sending pages (network calls to Twilio, tens to hundreds of milliseconds each).
# * `periodic`: the other safety nets (delivery reconciliation, the intake inbox drain and its
#   retention, heartbeats, handovers, reminders, gap checks), so queued deliveries never starve them.
# * `celery`: everything else (intake drain kicks, phone-line confirmations).
# A worker started without -Q consumes every queue (the tests); config/queues.py says which worker of
# the production layout takes which.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", routing_key="celery"),
    Queue("periodic", routing_key="periodic"),
    Queue("escalations", routing_key="escalations"),
    Queue("deliveries", routing_key="deliveries"),
    Queue("webhooks", routing_key="webhooks"),  # outgoing webhook POSTs (escalations/webhooks/)
)
# Task names are frozen (workers, queued messages and beat refer to them); they no longer match module paths.
CELERY_TASK_ROUTES = {
    "escalations.tasks.sweep": {"queue": "escalations"},
    "escalations.tasks.incidents_advance": {"queue": "escalations"},
    "escalations.tasks.incident_advance": {"queue": "escalations"},
    "escalations.deliver_page": {"queue": "deliveries"},
    "escalations.deliver_pages": {"queue": "deliveries"},
    "escalations.page_reconcile": {"queue": "periodic"},
    "escalations.tasks.retention_purge": {"queue": "periodic"},
    # The inbox drain woken by accepted events is intake's critical path, not a safety net.
    "escalations.intake_tasks.inbox_drain": {"queue": "celery"},
    "escalations.intake_tasks.*": {"queue": "periodic"},
    "rotations.tasks.shift_*": {"queue": "periodic"},
    "rotations.tasks.roster_*": {"queue": "periodic"},
    "portal.tasks.insights_rollup": {"queue": "periodic"},
    # The worker heartbeats name their queue in the beat entry (options win over routes).
    "escalations.monitoring.deadman": {"queue": "periodic"},
}
# The one beat schedule. Every job is idempotent and safe if two beats run at once: each one
# takes database row locks, never an in-memory flag.
CELERY_BEAT_SCHEDULE: dict = {
    "escalation-sweep": {
        "task": "escalations.tasks.sweep",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=1.0),
        "options": {"expires": 10},
    },
    # Pages stuck in `sending` are checked with the provider; due pages whose message was lost are
    # enqueued again.
    "page-reconcile": {
        "task": "escalations.page_reconcile",
        "schedule": env.float("PAGE_RECONCILE_INTERVAL_SECONDS", default=5.0),
        "options": {"expires": 14},
    },
    # Accepted events are applied when the web request's debounced kick arrives; this applies them
    # anyway when that message was lost (dead worker, restarted Redis).
    "intake-inbox-drain": {
        "task": "escalations.intake_tasks.inbox_drain_periodic",
        "schedule": env.float("INBOX_DRAIN_INTERVAL_SECONDS", default=1.0),
        "options": {"expires": 10},
    },
    "intake-inbox-purge": {
        "task": "escalations.intake_tasks.inbox_purge",
        "schedule": 600.0,
        "options": {"expires": 500},
    },
    "retention-purge": {
        "task": "escalations.tasks.retention_purge",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "heartbeat-check": {
        "task": "escalations.intake_tasks.heartbeats_check",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Shift notices (rotations.tasks): unique rows make a missed, doubled or repeated run harmless.
    "shift-handovers": {
        "task": "rotations.tasks.shift_handovers",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    "shift-reminders": {
        "task": "rotations.tasks.shift_reminders",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    "roster-change-notices": {
        "task": "rotations.tasks.roster_change_notices",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    # Daily at 06:00 UTC for the record; hourly as well because it is cheap and roster edits
    # outside the portal (admin, API) should not wait a day.
    "roster-gap-check": {
        "task": "rotations.tasks.roster_gap_check",
        "schedule": crontab(minute=0, hour=6),
        "options": {"expires": 3000},
    },
    "roster-gap-check-hourly": {
        "task": "rotations.tasks.roster_gap_check",
        "schedule": crontab(minute=17),
        "options": {"expires": 3000},
    },
    # Insights' roll-up of past days (portal.insights.rollup): changes to incidents opened before today show
    # on Insights after the next run. A few seconds of PostgreSQL for 100,000 incidents.
    "insights-rollup": {
        "task": "portal.tasks.insights_rollup",
        "schedule": env.float("INSIGHTS_ROLLUP_INTERVAL_SECONDS", default=300.0),
        "options": {"expires": 240},
    },
    # Monitoring (escalations.monitoring): a heartbeat through each queue proves a worker consumes it,
    # and the dead man's switch pings DEADMAN_URL only while beat, both paging workers and the
    # database are healthy.
    **{
        f"worker-heartbeat-{queue}": {
            "task": "escalations.monitoring.worker_heartbeat",
            "schedule": env.float("WORKER_HEARTBEAT_SECONDS", default=15.0),
            "args": (queue,),
            "options": {"queue": queue, "expires": 14},
        }
        for queue in ("escalations", "deliveries", "periodic", "celery", "webhooks")
    },
    "deadman-switch": {
        "task": "escalations.monitoring.deadman",
        "schedule": env.float("DEADMAN_INTERVAL_SECONDS", default=60.0),
        "options": {"expires": 50},
    },
}

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api_auth.ApiTokenAuthentication",
        "portal.api_auth.StaffMfaSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "portal.api_pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "portal.api_errors.json_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"integration": env.str("INTEGRATION_RATE", default="600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Backstop API",
    "DESCRIPTION": "On-call rosters, escalations and incidents.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc come from drf-spectacular-sidecar's static files, never from a CDN: the docs
    # work on an air-gapped installation and run exactly the script version pinned in pyproject.toml.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No online validator badge: it would send the schema URL to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `kind`/`status` field: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "IncidentStatusEnum": "escalations.models.Incident.Status",
        "PageStatusEnum": "escalations.models.Page.Status",
        "IntegrationKindEnum": "escalations.models.Integration.Kind",
        "TargetKindEnum": "escalations.models.EscalationTarget.Kind",
        "HeartbeatStateEnum": "escalations.models.Heartbeat.State",
        "WebhookEventTypeEnum": "escalations.webhooks.events.EVENT_TYPE_CHOICES",
    },
}

DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Alert intake refuses bodies larger than this with 413.
BACKSTOP_INTAKE_MAX_BYTES = env.int("INTAKE_MAX_BYTES", default=512 * 1024)
# The intake inbox (escalations.intake.inbox): events per drain transaction, the debounce window of the
# web requests' drain kick (also the kick's countdown), and how long applied events are kept.
BACKSTOP_INBOX_BATCH = env.int("INBOX_BATCH", default=500)
BACKSTOP_INBOX_KICK_MS = env.int("INBOX_KICK_MS", default=100)
BACKSTOP_INBOX_RETENTION = timedelta(hours=env.float("INBOX_RETENTION_HOURS", default=24))
# Personal data kept for a while, then purged by the beat job "retention-purge" (escalations.retention.services):
# emergency-line calls with their recordings at Twilio, outbox rows, alert and resolved incidents' payloads.
BACKSTOP_CALL_RETENTION = timedelta(days=env.float("CALL_RETENTION_DAYS", default=90))
BACKSTOP_OUTBOX_RETENTION = timedelta(days=env.float("OUTBOX_RETENTION_DAYS", default=30))
BACKSTOP_PAYLOAD_RETENTION = timedelta(days=env.float("PAYLOAD_RETENTION_DAYS", default=180))

# --- Monitoring ---------------------------------------------------------------------------
# /metrics answers a request bearing METRICS_TOKEN, or from an address in METRICS_ALLOWED_NETWORKS.
BACKSTOP_METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
BACKSTOP_METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
# A worker is "seen" on a queue while its heartbeat (every 15 s) ran within this.
BACKSTOP_WORKER_STALE_AFTER = timedelta(seconds=env.int("WORKER_STALE_AFTER_SECONDS", default=60))
# The dead man's switch: a URL pinged every minute while Backstop can page (empty: off).
BACKSTOP_DEADMAN_URL = env.str("DEADMAN_URL", default="")
BACKSTOP_DEADMAN_TIMEOUT_SECONDS = env.float("DEADMAN_TIMEOUT_SECONDS", default=5.0)

# Log lines: "json" (one object per line, for a log pipeline) or "plain" (for people; the demo).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "config.log_json.JsonFormatter"},
    },
    # Phone numbers, transcripts, recording URLs and tokens are masked in every line (config.log_redaction).
    # Each line carries the id of the request it belongs to (config.log_json.RequestIdMiddleware).
    "filters": {
        "redact": {"()": "config.log_redaction.RedactFilter"},
        "ids": {"()": "config.log_json.RequestIdFilter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["ids", "redact"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's line per request follows LOG_LEVEL (Django's own default prints every one).
        "django.server": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO"), "propagate": False},
        # An incident opened, acknowledged or resolved, a page sent (escalations.incidents.events): one line each,
        # kept when LOG_LEVEL is WARNING.
        "backstop.events": {"level": env.str("EVENTS_LOG_LEVEL", default="INFO")},
    },
}

# Outgoing webhooks (escalations/webhooks/). Private, loopback and other internal addresses are refused
# as webhook targets unless this is set (a receiver on the installation's own network, the tests).
BACKSTOP_WEBHOOKS_ALLOW_PRIVATE = env.bool("BACKSTOP_WEBHOOKS_ALLOW_PRIVATE", default=False)
BACKSTOP_WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
CELERY_IMPORTS.append("escalations.webhooks.tasks")
CELERY_TASK_ROUTES["escalations.webhooks.deliver"] = {"queue": "webhooks"}
CELERY_TASK_ROUTES["escalations.webhooks.*"] = {"queue": "periodic"}
CELERY_BEAT_SCHEDULE["webhook-sweep"] = {
    "task": "escalations.webhooks.sweep",
    "schedule": env.float("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=5.0),
    "options": {"expires": 20},
}
CELERY_BEAT_SCHEDULE["webhook-purge"] = {
    "task": "escalations.webhooks.purge",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}
# Slack app (escalations.slack): channel messages per incident, buttons, /oncall, on-call user groups,
# paging by DM. Without a bot token all of it is inert. BACKSTOP_SLACK_API_URL points the SDK elsewhere (tests).
BACKSTOP_SLACK_BOT_TOKEN = env.str("BACKSTOP_SLACK_BOT_TOKEN", default="")
BACKSTOP_SLACK_SIGNING_SECRET = env.str("BACKSTOP_SLACK_SIGNING_SECRET", default="")
BACKSTOP_SLACK_API_URL = env.str("BACKSTOP_SLACK_API_URL", default="")
BACKSTOP_SLACK_TIMEOUT = env.int("BACKSTOP_SLACK_TIMEOUT", default=10)
BACKSTOP_SLACK_RATE_LIMIT_RETRIES = env.int("BACKSTOP_SLACK_RATE_LIMIT_RETRIES", default=2)
CELERY_IMPORTS.append("escalations.slack.tasks")
CELERY_TASK_ROUTES["escalations.slack.*"] = {"queue": "celery"}
