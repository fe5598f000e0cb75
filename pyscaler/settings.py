"""PyScaler settings.

Everything that varies per deployment comes from the environment (see the
configuration table in README.md). Defaults run on one machine with no set-up:
SQLite under var/, the local RabbitMQ, one local memcached. Bad values fail at
start-up with the variable's name rather than at first use.
"""
from __future__ import annotations

import getpass
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env file is optional; real environment variables always win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("PYSCALER_VAR_DIR", default=str(BASE_DIR / "var")))


def _secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME or from the file named by NAME_FILE.

    The *_FILE form lets systemd credentials, Docker secrets and Kubernetes
    mounts supply secrets without putting them in the process environment.
    """
    file_var = f"{name}_FILE"
    if os.environ.get(file_var):
        path = Path(os.environ[file_var])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{file_var}: cannot read {path}: {exc}") from exc
    return os.environ.get(name, default)


def _persistent_secret_key(name: str = "secret_key") -> str:
    """A per-installation key kept under var/, so a dev install needs no set-up
    but sessions survive a restart. Production sets SECRET_KEY(_FILE)."""
    path = VAR_DIR / name
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this installation made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


# ---------------------------------------------------------------------------
# Core Django
# ---------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = _secret("SECRET_KEY") or _persistent_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "apps.monitoring",
    "apps.monitoring.ssh",
    "apps.monitoring.jmx",
    "apps.control",
    "apps.actions",
    "apps.configsync",
    "apps.history",
    "django_filters",
    "apps.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]
# django-axes first: it refuses a locked-out username before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "pyscaler.urls"
WSGI_APPLICATION = "pyscaler.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'pyscaler.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers, beat and web share one SQLite file: wait for the write lock
    # instead of failing at once, and use WAL so readers never block writers.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Admin writes times as the console does (pyscaler/formats/en/formats.py).
FORMAT_MODULE_PATH = ["pyscaler.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Hashed, compressed names once `collectstatic` has run (production images,
# nginx); plain names straight from the apps otherwise (make run, tests), so
# a missing collectstatic never turns pages into errors.
# collectstatic itself must use the manifest storage: the manifest it writes
# does not exist yet when it starts.
_COLLECTED = (STATIC_ROOT / "staticfiles.json").exists() or sys.argv[1:2] == ["collectstatic"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Without collectstatic (development, tests) whitenoise serves from the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

# The console's login page (admin's login would refuse non-staff users).
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# Browser libraries installed by `npm ci` (make static-deps) from package-lock.json,
# served as static files like the apps' own: no CDN.
STATICFILES_DIRS = [("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist")]

# ---------------------------------------------------------------------------
# Data API (/api/v1/, OpenAPI at /api/v1/openapi.json) and Prometheus (/metrics)
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with "WWW-Authenticate: Token".
    # Session authentication enforces CSRF on unsafe methods.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser", "rest_framework.parsers.FormParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.web.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PyScaler data API",
    "DESCRIPTION": "Counter series, cluster and trigger status, executions and firing, the configuration.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "apps.control.choices.ExecutionStatus",
        "StepStatusEnum": "apps.control.choices.StepStatus",
        "NodeStateEnum": "apps.control.choices.NodeState",
        "NodeHealthStateEnum": "apps.web.api.serializers.NODE_HEALTH_STATES",
        "TriggerStateEnum": "apps.web.api.serializers.TRIGGER_STATES",
    },
    # <id:...> path segments (apps/web/converters.py): 64-bit ids.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}},
}
# Bearer token Prometheus sends to /metrics. Empty: /metrics answers 404 (off).
METRICS_TOKEN = _secret("METRICS_TOKEN", "") or ""
# /healthz reuses its probe result this long (seconds; 0: probe every request).
HEALTHZ_CACHE_S = env.float("HEALTHZ_CACHE_S", default=5.0)

# ---------------------------------------------------------------------------
# Security (production switches; `manage.py check --deploy` reads these)
# ---------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers and Docker's HEALTHCHECK probe /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Sessions end after 12 hours (Django's default is two weeks).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
# Brute-force protection (django-axes) of every password login: the console's
# /login/ and /admin/login/ (the API takes tokens or those sessions, never a
# password). After LOGIN_FAILURE_LIMIT wrong passwords for one username, or
# from one client address (any usernames: password spraying), that username or
# address is refused, right password or not, for LOGIN_LOCKOUT_MINUTES or until
# `manage.py axes_reset_username <name>` / `axes_reset_ip <address>`. Behind
# nginx the address is the one nginx saw (apps/web/client_ip.py).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "apps.web.client_ip.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "console/locked.html"
# No start-up banner in every process; failures and lockouts are still logged (WARNING).
AXES_VERBOSE = False

# ---------------------------------------------------------------------------
# E-mail (EMAIL_URL, e.g. smtp+tls://user@host:587; the password may come from
# EMAIL_HOST_PASSWORD(_FILE) instead of the URL)
# ---------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
if _secret("EMAIL_HOST_PASSWORD"):
    EMAIL_HOST_PASSWORD = _secret("EMAIL_HOST_PASSWORD")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_S", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="pyscaler@localhost")
if env.str("EMAIL_FILE_PATH", default=""):
    EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH")

# ---------------------------------------------------------------------------
# Celery (RabbitMQ). Three queues: collection scales out across worker hosts;
# control and actions are kept apart so a slow EC2 launch never delays
# evaluation.
# ---------------------------------------------------------------------------
CELERY_BROKER_URL = _secret("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="rpc://")
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)
    for name in ("collect", "control", "actions")
)
CELERY_TASK_DEFAULT_QUEUE = "control"
# Every task by name (Celery's default: its module path) -> its queue.
# A task missing here goes to the default queue, "control".
CELERY_TASK_ROUTES = {
    "apps.monitoring.tasks.dispatch_collection_task": {"queue": "control"},
    "apps.monitoring.tasks.collect_task": {"queue": "collect"},
    "apps.control.tasks.evaluate_task": {"queue": "control"},
    "apps.control.tasks.evaluate_policies_task": {"queue": "control"},
    # History's merges run beside collection (the shared collect queue), on
    # the hosts that scale with it, never delaying evaluation.
    "apps.history.tasks.summarise_task": {"queue": "collect"},
    "apps.history.tasks.maintain_task": {"queue": "control"},
    "apps.control.tasks.reap_stale_steps_task": {"queue": "control"},
    "apps.control.tasks.run_step_task": {"queue": "actions"},
    "pyscaler.actions.run_step": {"queue": "actions"},  # legacy name, see apps/control/tasks.py
    "pyscaler.celery.ping": {"queue": "control"},
}
# Late acks + reject on worker loss: a task whose worker dies is redelivered,
# never lost. Tasks are written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT_S", default=900)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT_S", default=840)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_HEARTBEAT = 30
# Broker outages (tests/control/test_outages.py): a worker retries the broker
# for as long as it is away (Celery's default gives up after 100 attempts,
# about 45 minutes, and the worker exits), and a task running when the
# connection drops is left to finish (Celery 6 would kill it by default): its
# redelivered message sees the step alive (apps/control/step_holder.py) rather
# than starting it a second time.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
COLLECT_TICK_S = env.float("COLLECT_TICK_S", default=1.0)
EVALUATE_TICK_S = env.float("EVALUATE_TICK_S", default=1.0)
# Scaling policies (apps/control/policy_runner.py) are evaluated this often.
POLICY_TICK_S = env.float("POLICY_TICK_S", default=5.0)
# Policy decision records older than this are deleted as policies are evaluated.
POLICY_DECISION_RETENTION_DAYS = env.int("POLICY_DECISION_RETENTION_DAYS", default=30)
COLLECT_BATCH_SIZE = env.int("COLLECT_BATCH_SIZE", default=10)
# HMAC key the dispatcher (beat) signs collect messages with and workers check
# (apps.monitoring.collection.signing). Unset, each installation generates its
# own under var/ (one host works; beat and workers on several hosts would not
# agree, so `check --deploy` requires it set); the web host needs none of the
# beat host's (it publishes only step tasks).
COLLECT_SIGNING_KEY_SET = bool(_secret("COLLECT_SIGNING_KEY", ""))
COLLECT_SIGNING_KEY = _secret("COLLECT_SIGNING_KEY", "") or _persistent_secret_key("collect_signing_key")
# An absent sample is "pending" until its stamp + interval + this grace, then
# "missing" (the trigger's missing-data policy applies).
EVALUATOR_GRACE_S = env.float("EVALUATOR_GRACE_S", default=5.0)
COLLECT_THREADS = env.int("COLLECT_THREADS", default=16)
# Node affinity (apps/monitoring/collection/affinity.py, README "How collection
# is spread"): each collect worker advertises itself in memcached every
# COLLECT_HEARTBEAT_S (stale after COLLECT_CONSUMER_TTL_S) and consumes a queue
# of its own, collect.<worker name>, which RabbitMQ drops after
# COLLECT_QUEUE_EXPIRES_S without a consumer; beat hashes each node onto one live
# worker, at most COLLECT_MAX_NODES_PER_PROCESS per worker process. With
# COLLECT_AFFINITY off (or no worker advertised) batches go to the shared queue.
COLLECT_AFFINITY = env.bool("COLLECT_AFFINITY", default=True)
COLLECT_HEARTBEAT_S = env.float("COLLECT_HEARTBEAT_S", default=5.0)
COLLECT_CONSUMER_TTL_S = env.int("COLLECT_CONSUMER_TTL_S", default=15)
COLLECT_QUEUE_EXPIRES_S = env.int("COLLECT_QUEUE_EXPIRES_S", default=120)
COLLECT_MAX_NODES_PER_PROCESS = env.int("COLLECT_MAX_NODES_PER_PROCESS", default=300)
# An SSH connection unused this long is closed (0: never). Above the longest
# counter interval, or such nodes reconnect every round.
SSH_IDLE_CLOSE_S = env.float("SSH_IDLE_CLOSE_S", default=600.0)
# Beat runs two small, frequent dispatchers; all real work is fanned out as
# tasks. The configuration is read from the database on every tick, so admin
# changes apply without restarting beat. Run exactly one beat.
# A tick of 0 switches that dispatcher off (benchmarks that write samples
# themselves; a host running beat for another purpose).
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": tick, "options": {"expires": tick * 2}}
    for name, task, tick in (
        ("dispatch-collection", "apps.monitoring.tasks.dispatch_collection_task", COLLECT_TICK_S),
        ("evaluate-triggers", "apps.control.tasks.evaluate_task", EVALUATE_TICK_S),
        ("evaluate-policies", "apps.control.tasks.evaluate_policies_task", POLICY_TICK_S),
        # Steps whose worker died without redelivery (hard time limit) are failed.
        ("reap-stale-steps", "apps.control.tasks.reap_stale_steps_task",
         env.float("REAP_TICK_S", default=60.0)),
        # History: partitions ahead, retention (README "History").
        ("history-maintenance", "apps.history.tasks.maintain_task",
         env.float("HISTORY_MAINTENANCE_TICK_S", default=3600.0)),
    )
    if tick > 0
}

# Action chains: while an execution that deploys or removes nodes is pending or
# running on a cluster, another AUTOMATIC firing with deploy/remove on that
# cluster is recorded as "blocked" instead of running (manual firings are not).
CHAIN_BLOCK_CONCURRENT_SCALING = env.bool("CHAIN_BLOCK_CONCURRENT_SCALING", default=True)
# Characters of a step's output kept in the execution history (head + tail).
CHAIN_STEP_OUTPUT_MAX_CHARS = env.int("CHAIN_STEP_OUTPUT_MAX_CHARS", default=65536)
# A step's Celery soft time limit is its action's timeout plus this; the hard
# limit (the pool process is killed) comes this much later again.
CHAIN_SOFT_LIMIT_GRACE_S = env.int("CHAIN_SOFT_LIMIT_GRACE_S", default=5)
CHAIN_HARD_LIMIT_GRACE_S = env.int("CHAIN_HARD_LIMIT_GRACE_S", default=10)
# A step failing retryably (ActionError(retryable=True)) runs again: at most
# this many tries in all, pausing BACKOFF_S, then twice as long each time (up
# to MAX_BACKOFF_S), never past the step's deadline (apps/control/retries.py).
CHAIN_STEP_RETRY_ATTEMPTS = env.int("CHAIN_STEP_RETRY_ATTEMPTS", default=3)
CHAIN_STEP_RETRY_BACKOFF_S = env.float("CHAIN_STEP_RETRY_BACKOFF_S", default=1.0)
CHAIN_STEP_RETRY_MAX_BACKOFF_S = env.float("CHAIN_STEP_RETRY_MAX_BACKOFF_S", default=30.0)
# Webhook steps: the bound on one POST (connecting, then each wait for the
# server) unless the action sets its own timeout_s; an HTTP(S) proxy for them
# (the worker's HTTP_PROXY/NETRC environment is deliberately not read).
WEBHOOK_TIMEOUT_S = env.float("WEBHOOK_TIMEOUT_S", default=10.0)
WEBHOOK_PROXY_URL = env.str("WEBHOOK_PROXY_URL", default="")
# Certificates (a PEM bundle file) Webhook steps trust for https; empty: certifi's.
WEBHOOK_CA_BUNDLE = env.str("WEBHOOK_CA_BUNDLE", default="")

# ---------------------------------------------------------------------------
# Sample store (memcached) and sample log
# ---------------------------------------------------------------------------
MEMCACHED_SERVERS = env.list("MEMCACHED_SERVERS", default=["127.0.0.1:11211"])
MEMCACHED_TIMEOUT_S = env.float("MEMCACHED_TIMEOUT_S", default=0.5)
# Failover (pymemcache HashClient): a failing server is retried every
# MEMCACHED_RETRY_TIMEOUT_S; after two failed retries it leaves the ring (its
# keys go to the others) until MEMCACHED_DEAD_TIMEOUT_S has passed.
MEMCACHED_RETRY_TIMEOUT_S = env.float("MEMCACHED_RETRY_TIMEOUT_S", default=1.0)
MEMCACHED_DEAD_TIMEOUT_S = env.float("MEMCACHED_DEAD_TIMEOUT_S", default=10.0)
SAMPLE_RETENTION_S = env.int("SAMPLE_RETENTION_S", default=2 * 24 * 3600)
SAMPLE_LOG_DIR = Path(env.str("SAMPLE_LOG_DIR", default=str(VAR_DIR / "samples")))
SAMPLE_LOG_MAX_BYTES = env.int("SAMPLE_LOG_MAX_BYTES", default=50 * 1024 * 1024)
SAMPLE_LOG_BACKUPS = env.int("SAMPLE_LOG_BACKUPS", default=10)

# ---------------------------------------------------------------------------
# History (apps/history, README "History"): per-minute and per-hour summaries
# of every series, persisted. HISTORY_DATABASES lists the database aliases
# that hold them (each cluster on one); the first takes new clusters.
# ---------------------------------------------------------------------------
HISTORY_ENABLED = env.bool("HISTORY_ENABLED", default=True)
HISTORY_MINUTE_RETENTION_DAYS = env.int("HISTORY_MINUTE_RETENTION_DAYS", default=30)
HISTORY_HOUR_RETENTION_DAYS = env.int("HISTORY_HOUR_RETENTION_DAYS", default=730)
# How long a merged batch's id is kept to refuse a redelivered copy.
HISTORY_BATCH_ID_DAYS = env.int("HISTORY_BATCH_ID_DAYS", default=7)
HISTORY_DATABASES = env.list("HISTORY_DATABASES", default=["default"])
# Each alias but "default" is its own database: HISTORY_DATABASE_URL_<ALIAS>.
for _alias in HISTORY_DATABASES:
    if _alias != "default" and _alias not in DATABASES:
        if not env.str(f"HISTORY_DATABASE_URL_{_alias.upper()}", default=""):
            raise ImproperlyConfigured(f"HISTORY_DATABASES names {_alias!r}: set HISTORY_DATABASE_URL_{_alias.upper()}")
        DATABASES[_alias] = env.db_url(f"HISTORY_DATABASE_URL_{_alias.upper()}")
if not HISTORY_DATABASES:
    raise ImproperlyConfigured("HISTORY_DATABASES must name at least one database alias")
DATABASE_ROUTERS = ["apps.history.routers.HistoryRouter"]
# Rows of a cluster being moved (manage.py move_history) are merged this much later.
HISTORY_DEFER_S = env.int("HISTORY_DEFER_S", default=30)
# A move waits this long after freezing a cluster before copying it: a merge
# that had read the old placement commits (or sees the freeze) within it.
HISTORY_MOVE_SETTLE_S = env.float("HISTORY_MOVE_SETTLE_S", default=5.0)
# Readers of the summaries fill periods that have no summary rows yet, but
# whose samples memcached still holds, from those samples (apps/history/raw_fill.py):
# at most this many sample keys per answer, newest periods first (0: no fill).
HISTORY_RAW_FILL_MAX_KEYS = env.int("HISTORY_RAW_FILL_MAX_KEYS", default=100_000)
if HISTORY_RAW_FILL_MAX_KEYS < 0:
    raise ImproperlyConfigured(
        f"HISTORY_RAW_FILL_MAX_KEYS must be 0 (no fill) or more, not {HISTORY_RAW_FILL_MAX_KEYS}")
for _name in ("HISTORY_MINUTE_RETENTION_DAYS", "HISTORY_HOUR_RETENTION_DAYS", "HISTORY_BATCH_ID_DAYS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1, not {globals()[_name]}")

# ---------------------------------------------------------------------------
# SSH (paramiko). Host keys are verified: "reject" refuses unknown hosts,
# "tofu" records a host's first key in the database and refuses a changed one.
# There is deliberately no "auto-add everything" policy.
# ---------------------------------------------------------------------------
SSH_DEFAULT_USER = env.str("SSH_USER", default=getpass.getuser())
SSH_DEFAULT_PORT = env.int("SSH_PORT", default=22)
SSH_KEY_PATH = env.str("SSH_KEY_PATH", default="")
SSH_PASSWORD = _secret("SSH_PASSWORD")
# What a secret reference (ssh_password_ref, a JVM's password_ref) may name:
# environment variables with this prefix, files in this directory
# (pyscaler/secretrefs.py says why).
SECRET_REF_ENV_PREFIX = env.str("SECRET_REF_ENV_PREFIX", default="PYSCALER_SECRET_")
SECRET_REF_DIR = env.str("SECRET_REF_DIR", default="/etc/pyscaler/secrets")
SSH_KNOWN_HOSTS = env.str("SSH_KNOWN_HOSTS", default=str(Path.home() / ".ssh" / "known_hosts"))
SSH_HOST_KEY_POLICY = env.str("SSH_HOST_KEY_POLICY", default="reject")
if SSH_HOST_KEY_POLICY not in ("reject", "tofu"):
    raise ImproperlyConfigured(
        f"SSH_HOST_KEY_POLICY must be 'reject' or 'tofu', not {SSH_HOST_KEY_POLICY!r}"
    )
SSH_CONNECT_TIMEOUT_S = env.float("SSH_CONNECT_TIMEOUT_S", default=5.0)
SSH_COMMAND_TIMEOUT_S = env.float("SSH_COMMAND_TIMEOUT_S", default=10.0)
# The shell that runs counter commands on a node (started through the user's
# login shell, so it has the user's environment): /bin/sh, or "login" for the
# login shell itself (bash syntax in counters, more CPU per command).
SSH_COLLECT_SHELL = env.str("SSH_COLLECT_SHELL", default="/bin/sh")
if SSH_COLLECT_SHELL != "login" and not SSH_COLLECT_SHELL.startswith("/"):
    raise ImproperlyConfigured(
        f"SSH_COLLECT_SHELL must be an absolute path or 'login', not {SSH_COLLECT_SHELL!r}"
    )

# ---------------------------------------------------------------------------
# JMX (jpype). JAVA_HOME or JVM_PATH locate libjvm; by default jpype finds it.
# ---------------------------------------------------------------------------
JVM_PATH = env.str("JVM_PATH", default="")
JMX_CONNECT_TIMEOUT_S = env.float("JMX_CONNECT_TIMEOUT_S", default=5.0)
# Bound on each JMX read (RMI responseTimeout of the worker's JVM, fixed when it starts).
JMX_READ_TIMEOUT_S = env.float("JMX_READ_TIMEOUT_S", default=10.0)
# Certificates (PEM) of JVMs whose JMX speaks TLS, one file per JVM and node:
# OSConfiguration writes them, collect workers read them (apps/monitoring/jmx/trust.py).
# Workers on several hosts need the same directory (shared or copied).
JMX_TRUST_DIR = Path(env.str("JMX_TRUST_DIR", default=str(VAR_DIR / "jmx-trust")))

# ---------------------------------------------------------------------------
# AWS (boto3's standard credential chain; AWS_ENDPOINT_URL points at moto in tests)
# ---------------------------------------------------------------------------
AWS_DEFAULT_REGION = env.str("AWS_DEFAULT_REGION", default="us-east-1")
AWS_ENDPOINT_URL = env.str("AWS_ENDPOINT_URL", default="") or None
AWS_TIMEOUT_S = env.float("AWS_TIMEOUT_S", default=30.0)
# Attempts per AWS call (botocore's "standard" retry mode: throttling and
# transient errors are retried with backoff), and how often waiters poll.
AWS_MAX_ATTEMPTS = env.int("AWS_MAX_ATTEMPTS", default=3)
AWS_WAITER_DELAY_S = env.float("AWS_WAITER_DELAY_S", default=5.0)


def _address_override(value: str) -> dict[str, tuple[str, int | None]]:
    """Parse NODE_ADDRESS_OVERRIDE: ``*=127.0.0.1:2222`` or
    ``i-0abc=127.0.0.2:22,*=127.0.0.1`` (instance id or * -> host[:ssh port])."""
    mapping: dict[str, tuple[str, int | None]] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, target = item.partition("=")
        host, _, port = target.strip().rpartition(":") if target.count(":") == 1 else (target.strip(), "", "")
        if not sep or not key.strip() or not host or (port and not port.isdigit()):
            raise ImproperlyConfigured(
                f"NODE_ADDRESS_OVERRIDE: {item!r} is not '<instance id or *>=<host>[:<ssh port>]'"
            )
        mapping[key.strip()] = (host, int(port) if port else None)
    return mapping


# TESTS AND DEMO ONLY: EC2 instances launched by DeployEc2Node get the address
# (and SSH port) given here instead of their own, so follow-up steps reach a
# loopback sshd while moto invents the instances' addresses. Never set it in
# production. Empty: nodes use their instance's private IP (or DNS name).
NODE_ADDRESS_OVERRIDE = _address_override(env.str("NODE_ADDRESS_OVERRIDE", default=""))

# ---------------------------------------------------------------------------
# Puppet (OSConfiguration): the puppet/ directory is copied to the node over
# SFTP and applied there with `puppet apply`.
# ---------------------------------------------------------------------------
PUPPET_DIR = Path(env.str("PUPPET_DIR", default=str(BASE_DIR / "puppet")))
# Where on the node the copy and Puppet's state (confdir, vardir, ...) live:
# "~/" is the SSH user's home. It must be the SSH user's own, mode 0700 (made
# so when missing); a run refuses any other (apps/actions/puppet_workdir.py).
PUPPET_REMOTE_DIR = env.str("PUPPET_REMOTE_DIR", default="~/.pyscaler-puppet")
# How Puppet is started on the node, e.g. "sudo -n puppet" for a non-root SSH user.
PUPPET_COMMAND = env.str("PUPPET_COMMAND", default="puppet")
PUPPET_FACTER_COMMAND = env.str("PUPPET_FACTER_COMMAND", default="facter")
# Run facter and puppet in a loopback-only network namespace on the node
# (`unshare -n`, needs root or unprivileged user namespaces). Tests and the demo
# turn it on because their "node" is this machine and facter's cloud facts may
# query 169.254.169.254; services the manifest starts still run in the node's
# own network namespace.
PUPPET_SEAL_NETWORK = env.bool("PUPPET_SEAL_NETWORK", default=False)
# Facter fact groups not resolved for OSConfiguration runs (`facter
# --list-block-groups`), e.g. "EC2,GCE" to skip cloud metadata lookups.
PUPPET_FACTER_BLOCKLIST = env.list("PUPPET_FACTER_BLOCKLIST", default=[])

# ---------------------------------------------------------------------------
# Logging: to stderr, where systemd's journal and docker logs pick it up.
# ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Celery's lines about the every-tick tasks are DEBUG, not INFO (pyscaler/logfilters.py).
    "filters": {"routine_tasks": {"()": "pyscaler.logfilters.RoutineTasks"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        **{name: {"filters": ["routine_tasks"]}
           for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat")},
    },
}
