"""Loudou settings, read from the environment with safe defaults.

Every knob a deployer may turn is a ``LOUDOU_*`` variable (see docs/configuration.md).
Nothing here is read from the environment anywhere else in the code.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent
VAR_DIR = Path(os.environ.get("LOUDOU_VAR_DIR", PROJECT_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("LOUDOU_DEBUG", False)
_INSECURE_KEY = "loudou-insecure-development-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = os.environ.get("LOUDOU_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("LOUDOU_PRODUCTION", False):
        raise ImproperlyConfigured("LOUDOU_SECRET_KEY must be set in production.")
    SECRET_KEY = _INSECURE_KEY

PRODUCTION = env_bool("LOUDOU_PRODUCTION", False)
ALLOWED_HOSTS = env_list("LOUDOU_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("LOUDOU_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "django_htmx",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "loudou.core",
    "loudou.org",
    "loudou.customers",
    "loudou.pipeline",
    "loudou.leads",
    "loudou.analytics",
    "loudou.activities",
    "loudou.sales",
    "loudou.targets",
    "loudou.onboarding",
    "loudou.notifications",
    "loudou.imports",
    "loudou.tasks",
    "loudou.rules",
    "loudou.worklist",
    "loudou.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "loudou.core.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "loudou.org.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "loudou.urls"
WSGI_APPLICATION = "loudou.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "loudou.web.context_processors.loudou",
            ],
        },
    }
]

# --- database -----------------------------------------------------------------
_default_db_url = f"sqlite:///{VAR_DIR / 'loudou.sqlite3'}"
DATABASE_URL = os.environ.get("LOUDOU_DATABASE_URL", "") or _default_db_url
if "://" not in DATABASE_URL:  # a bare path means a SQLite file
    DATABASE_URL = f"sqlite:///{Path(DATABASE_URL).resolve()}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers go on while one writer writes; IMMEDIATE takes the write lock
        # at BEGIN so two writers queue instead of failing half-way with "database locked".
        # A 64 MiB page cache and memory-mapped reads keep a large board off the disk.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            " PRAGMA busy_timeout=20000; PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("LOUDOU_TEST_SQLITE_NAME") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "org.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): lock a username+IP pair after repeated failures.
AXES_FAILURE_LIMIT = int(os.environ.get("LOUDOU_LOGIN_FAILURE_LIMIT", "8"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("LOUDOU_LOGIN_THROTTLE", True)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- i18n ---------------------------------------------------------------------
LANGUAGE_CODE = os.environ.get("LOUDOU_LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("LOUDOU_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True
LOUDOU_CURRENCY = os.environ.get("LOUDOU_CURRENCY", "CNY")
LOUDOU_COMPANY_NAME = os.environ.get("LOUDOU_COMPANY_NAME", "")
# Big imports prepare their batches in a second (forked) process while writing (on by
# default; imports.ahead.possible).
LOUDOU_IMPORT_AHEAD = env_bool("LOUDOU_IMPORT_AHEAD", True)

# --- static files -------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- background work ----------------------------------------------------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- notifications: e-mail and chat webhooks (loudou.notifications; docs/notifications.md)
# The address people reach Loudou at, for the links in e-mails and chat messages.
LOUDOU_BASE_URL = os.environ.get("LOUDOU_BASE_URL", "") or "http://127.0.0.1:8000"
# E-mail notifications exist only when an SMTP server is configured.
LOUDOU_SMTP_HOST = os.environ.get("LOUDOU_SMTP_HOST", "")
LOUDOU_EMAIL_NOTIFICATIONS = bool(LOUDOU_SMTP_HOST)
if LOUDOU_SMTP_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = LOUDOU_SMTP_HOST
    EMAIL_PORT = int(os.environ.get("LOUDOU_SMTP_PORT", "") or "587")
    EMAIL_HOST_USER = os.environ.get("LOUDOU_SMTP_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("LOUDOU_SMTP_PASSWORD", "")
    EMAIL_USE_SSL = env_bool("LOUDOU_SMTP_SSL", EMAIL_PORT == 465)  # implicit TLS
    EMAIL_USE_TLS = not EMAIL_USE_SSL and env_bool("LOUDOU_SMTP_TLS", True)  # STARTTLS
    EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("LOUDOU_SMTP_FROM", "") or "loudou@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Webhooks to private/loopback addresses (and plain http) are refused unless this is on.
LOUDOU_WEBHOOK_ALLOW_PRIVATE = env_bool("LOUDOU_WEBHOOK_ALLOW_PRIVATE", False)
LOUDOU_NOTIFY_MAX_ATTEMPTS = int(os.environ.get("LOUDOU_NOTIFY_MAX_ATTEMPTS", "") or "5")
LOUDOU_NOTIFY_RETRY_SECONDS = int(os.environ.get("LOUDOU_NOTIFY_RETRY_SECONDS", "") or "60")
# --- end of notifications -------------------------------------------------------------

# --- security -----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("LOUDOU_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("LOUDOU_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOUDOU_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}

# --- product settings -----------------------------------------------------------
# Rates resting on fewer resolved opportunities than this are marked "not yet stable".
# Completed revenue (DOMAIN §8, §9) counts signed contracts/orders or collected payments.
LOUDOU_COMPLETED_BASIS = os.environ.get("LOUDOU_COMPLETED_BASIS", "signed")
if LOUDOU_COMPLETED_BASIS not in ("signed", "collected"):
    raise ImproperlyConfigured("LOUDOU_COMPLETED_BASIS must be 'signed' or 'collected'.")
# Orders below this amount bypass the funnel: recorded as orders, not opportunities (§8).
LOUDOU_OUT_OF_FUNNEL_THRESHOLD = os.environ.get("LOUDOU_OUT_OF_FUNNEL_THRESHOLD", "20000")

LOUDOU_STABLE_THRESHOLD = int(os.environ.get("LOUDOU_STABLE_THRESHOLD", "20"))
# Fields a lead needs before it converts; "a|b" means either (e.g. "company,mobile|email").
LOUDOU_CONVERSION_REQUIRED = env_list("LOUDOU_CONVERSION_REQUIRED", "company,mobile|email")
# A visit check-in further than this from the account's coordinates is marked far.
LOUDOU_VISIT_FAR_METRES = int(os.environ.get("LOUDOU_VISIT_FAR_METRES", "1000"))
