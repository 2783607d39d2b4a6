"""loan_service settings: every value from the environment, with a development default."""

from decimal import Decimal
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from common.celery_config import COMMON_CELERY_SETTINGS, broker_settings
from common.django_settings import (
    SERVICE_MIDDLEWARE,
    SERVICE_TEMPLATES,
    allowed_hosts,
    idempotency_settings,
    token_verification,
    web_basics,
)
from common.drf import rest_framework_settings, spectacular_settings
from common.env import (
    database_from_env,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    is_development,
    var_dir,
)
from common.logging import logging_config
from loans.fees import parse_late_fee
from loans.schedule import parse_rate_tiers

SERVICE_NAME = "loan_service"
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = var_dir(__file__)

SECRET_KEY = env_secret("DJANGO_SECRET_KEY", "dev-only-loan-service-secret-key-change-me")  # Django signing key
DEBUG = env_bool("DJANGO_DEBUG", False)  # never true outside development
ALLOWED_HOSTS = allowed_hosts(["localhost", "127.0.0.1", "[::1]", "testserver", "loan-service"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])  # origins allowed to post the admin forms

INSTALLED_APPS = [
    "common.admin_health",  # before the admin: its admin/index.html adds the health panel to Django's
    "common.admin_sso_apps.SSOAdminConfig",  # django.contrib.admin, signing in through user_service with MFA
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_prometheus",
    "simple_history",
    "common.outbox",
    "common.idempotency",
    "common.audit",  # its decisions' audit trail (docs/DESIGN.md, "Audit trail")
    "loans",
]

MIDDLEWARE = SERVICE_MIDDLEWARE
ROOT_URLCONF = "loan_service.urls"
WSGI_APPLICATION = "loan_service.wsgi.application"

# The project's own templates first: its admin/index.html links the dashboard and extends the health panel's.
TEMPLATES = [{**SERVICE_TEMPLATES[0], "DIRS": [Path(__file__).resolve().parent / "templates"]}]

# DATABASE_URL (PostgreSQL in production and CI), else var/loan_service.sqlite3.
DATABASES = {"default": database_from_env(sqlite_path=VAR_DIR / "loan_service.sqlite3")}

# The Django admin signs in against user_service (role admin only); no local passwords.
AUTHENTICATION_BACKENDS = ["common.admin_sso.UserServiceAdminBackend"]
USER_SERVICE_URL = env_str("USER_SERVICE_URL", "http://127.0.0.1:8001")  # base URL of user_service
# The admin changes loans only through the services: simple-history's "Revert" would save the row directly.
SIMPLE_HISTORY_REVERT_DISABLED = True

globals().update(web_basics(var=VAR_DIR, service=SERVICE_NAME))

# --- Tokens (verified with user_service's public keys only) --------------------
globals().update(token_verification(var=VAR_DIR))

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = rest_framework_settings(authentication=["common.authentication.ServiceJWTAuthentication"])
SPECTACULAR_SETTINGS = spectacular_settings(
    title="loan_service", description="Loans, EMI and repayment schedule, row-locked decisions, history."
)
SERVICE_KEY = env_secret("SERVICE_KEY", "dev-only-service-key")  # sent to user_service's /internal/
USER_SERVICE_TIMEOUT = env_float("USER_SERVICE_TIMEOUT", 2.0)  # seconds to wait for the customer check


# --- Lending policy -------------------------------------------------------------
# Annual rate (percent, 0-100) by principal: "lower bound:rate" pairs, ascending, two
# decimals at most. A loan keeps the rate it was given; changing this affects new loans and edits only.
try:
    LOAN_RATE_TIERS = parse_rate_tiers(
        env_list("LOAN_RATE_TIERS", ["10000.00:8.45", "1000000.00:10.00", "2500000.00:12.00"])
    )
except ValueError as error:
    raise ImproperlyConfigured(f"LOAN_RATE_TIERS {error}") from None
LOAN_MIN_PRINCIPAL = Decimal(env_str("LOAN_MIN_PRINCIPAL", "10000.00"))  # smallest principal lent
LOAN_MAX_PRINCIPAL = Decimal(env_str("LOAN_MAX_PRINCIPAL", "100000000.00"))  # largest principal lent
LOAN_MAX_MONTHS = env_int("LOAN_MAX_MONTHS", 480)  # longest term in months

# --- Servicing (after approval) -------------------------------------------------
# An approved loan not disbursed within this many days of its approval may be cancelled.
LOAN_DISBURSE_WITHIN_DAYS = env_int("LOAN_DISBURSE_WITHIN_DAYS", 30)
LOAN_WRITE_OFF_MIN_DPD = env_int("LOAN_WRITE_OFF_MIN_DPD", 90)  # days past due before a loan may be written off
LOAN_LATE_FEE_GRACE_DAYS = env_int("LOAN_LATE_FEE_GRACE_DAYS", 5)  # days past due before the late fee is charged
try:
    # One fee per late instalment: a flat amount ("25.00") or a percentage of what is overdue ("2%").
    LOAN_LATE_FEE = parse_late_fee(env_str("LOAN_LATE_FEE", "25.00"))
except ValueError as error:
    raise ImproperlyConfigured(f"LOAN_LATE_FEE {error}") from None
LOAN_REMINDER_DAYS_BEFORE = env_int("LOAN_REMINDER_DAYS_BEFORE", 3)  # instalment.due this many days before
LOAN_DAILY_JOB_BATCH = env_int("LOAN_DAILY_JOB_BATCH", 2000)  # loans locked per transaction by the daily job
# Statements (PDF) go to Django's default storage: this folder unless STORAGES is changed to a django-storages backend.
MEDIA_ROOT = env_str("LOAN_MEDIA_ROOT", str(VAR_DIR / "media" / SERVICE_NAME))
MEDIA_URL = "media/"
STORAGES = {
    # e.g. "storages.backends.s3.S3Storage" (django-storages, configured by its own AWS_* variables)
    "default": {"BACKEND": env_str("LOAN_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Idempotency-Key: how long a key replays, and when a request left running is taken over.
globals().update(idempotency_settings())

# --- Events -------------------------------------------------------------------
globals().update(broker_settings(VAR_DIR))
globals().update(COMMON_CELERY_SETTINGS)
CELERY_APP = "loan_service.celery.app"
OUTBOX_RELAY_INTERVAL = env_float("OUTBOX_RELAY_INTERVAL", 0.2)  # seconds between relay passes when idle
# loan_service's own worker (queue "loans") runs statements and the daily job; beat starts the job each day.
CELERY_TASK_DEFAULT_QUEUE = "loans"
LOAN_DAILY_JOB_HOUR = env_int("LOAN_DAILY_JOB_HOUR", 0)  # UTC hour the daily job runs (minute 15)
CELERY_BEAT_SCHEDULE = {
    "run-daily": {"task": "loans.run_daily", "schedule": crontab(hour=LOAN_DAILY_JOB_HOUR, minute=15)},
    "requeue-statements": {"task": "loans.requeue_statements", "schedule": 300.0},
    "purge-idempotency-keys": {"task": "idempotency.purge_expired", "schedule": 3600.0, "options": {"queue": "loans"}},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "loan_service-beat-schedule")

LOGGING = logging_config(SERVICE_NAME, env_str("LOG_LEVEL", "INFO"))

if not is_development():
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
