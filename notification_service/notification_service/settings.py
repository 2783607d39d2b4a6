"""notification_service settings: every value from the environment, with a development default."""

from pathlib import Path

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
from notifications.delivery_policy import check_channels, check_visibility_timeout, longest_retry_delay

SERVICE_NAME = "notification_service"
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = var_dir(__file__)

SECRET_KEY = env_secret("DJANGO_SECRET_KEY", "dev-only-notification-service-secret-key-change-me")  # Django signing key
DEBUG = env_bool("DJANGO_DEBUG", False)  # never true outside development
ALLOWED_HOSTS = allowed_hosts(["localhost", "127.0.0.1", "[::1]", "testserver", "notification-service"])
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
    "common.idempotency",
    "notifications",
]

MIDDLEWARE = SERVICE_MIDDLEWARE
ROOT_URLCONF = "notification_service.urls"
WSGI_APPLICATION = "notification_service.wsgi.application"

TEMPLATES = SERVICE_TEMPLATES

# DATABASE_URL (PostgreSQL in production and CI), else var/notification_service.sqlite3.
DATABASES = {"default": database_from_env(sqlite_path=VAR_DIR / "notification_service.sqlite3")}

# The Django admin signs in against user_service (role admin only); no local passwords.
AUTHENTICATION_BACKENDS = ["common.admin_sso.UserServiceAdminBackend"]
USER_SERVICE_URL = env_str("USER_SERVICE_URL", "http://127.0.0.1:8001")  # base URL of user_service
SERVICE_KEY = env_secret("SERVICE_KEY", "dev-only-service-key")  # the admin's re-check at user_service's /internal/

globals().update(web_basics(var=VAR_DIR, service=SERVICE_NAME))

# --- Tokens (verified with user_service's public keys only) --------------------
globals().update(token_verification(var=VAR_DIR))

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = rest_framework_settings(authentication=["common.authentication.ServiceJWTAuthentication"])
SPECTACULAR_SETTINGS = spectacular_settings(
    title="notification_service", description="Notifications from events, delivered by Celery workers."
)
# Idempotency-Key: how long a key replays, and when a request left running is taken over.
globals().update(idempotency_settings())

# --- Delivery -------------------------------------------------------------------
# Channels every notifying event is sent on besides in_app (which is always on).
NOTIFICATION_CHANNELS = check_channels(env_list("NOTIFICATION_CHANNELS", ["email"]))
# The backend of each channel: "module.Class" with send(notification, recipient) -> provider id.
NOTIFICATION_BACKENDS = {
    "email": env_str("NOTIFICATION_EMAIL_BACKEND", "notifications.backends.EmailBackend"),
    "sms": env_str("NOTIFICATION_SMS_BACKEND", "notifications.backends.LogOnlyBackend"),
    "push": env_str("NOTIFICATION_PUSH_BACKEND", "notifications.backends.LogOnlyBackend"),
}
NOTIFICATION_MAX_RETRIES = env_int("NOTIFICATION_MAX_RETRIES", 5)  # transient delivery failures retried this often
# Retries wait a random time below base * 2**retry (full jitter), never more than the max.
NOTIFICATION_RETRY_BACKOFF_SECONDS = env_int("NOTIFICATION_RETRY_BACKOFF_SECONDS", 2)  # bound of the first retry
NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS = env_int("NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS", 300)  # longest delay
# Overdue this long past its last queueing (or scheduled retry), a pending notification is re-queued.
NOTIFICATION_STUCK_AFTER_SECONDS = env_int("NOTIFICATION_STUCK_AFTER_SECONDS", 600)
# Policy, not deployment: an event whose consumer hits database errors (down, failover) is retried this
# often with the same backoff; a stuck notification is re-queued this often, then failed.
NOTIFICATION_EVENT_MAX_RETRIES = 10
NOTIFICATION_MAX_REQUEUES = 3
DEAD_LETTER_RETRY_BOUND = 64  # past this many retries the doubled delay is at its cap whatever the settings
MAX_BATCH_RECIPIENTS = 1000  # API.md: send-batch takes at most this many user ids
# The admin index's health panel: after database and broker, the failed and waiting notifications, the dead letters.
ADMIN_HEALTH_CHECKS = ["notifications.health.delivery", "notifications.health.dead_letters"]

# SMTP when a server is configured (and always outside development); else emails go to the log.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if env_str("EMAIL_HOST") or not is_development()
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")  # SMTP server
EMAIL_PORT = env_int("EMAIL_PORT", 1025)  # SMTP port
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 5.0)  # seconds; a hung SMTP server is a transient failure
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Loans <no-reply@lms.example>")
# Policy: a notification "sending" this long lost its worker mid-send (after or before the provider
# took it): it is sent again with the same Message-ID. Longer than any SMTP conversation can last
# (each of its ~8 steps may wait EMAIL_TIMEOUT), so a live send is never taken over.
NOTIFICATION_SENDING_TAKEOVER_SECONDS = env_float("NOTIFICATION_SENDING_TAKEOVER_SECONDS", 10 * EMAIL_TIMEOUT)

# --- Events -------------------------------------------------------------------
_broker = broker_settings(VAR_DIR)
globals().update(_broker)
globals().update(COMMON_CELERY_SETTINGS)
check_visibility_timeout(
    _broker["CELERY_BROKER_TRANSPORT_OPTIONS"],
    # The dead-letter task retries without limit, so its longest delay is the backoff's cap.
    longest_delay=longest_retry_delay(
        base=NOTIFICATION_RETRY_BACKOFF_SECONDS,
        cap=NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS,
        max_retries=DEAD_LETTER_RETRY_BOUND,
    ),
)
CELERY_APP = "notification_service.celery.app"
# Dead letters travel with the events: the same workers consume them, no new queue to deploy.
CELERY_TASK_ROUTES = {
    "notifications.consume_event": {"queue": "events"},
    "notifications.store_dead_letter": {"queue": "events"},
    "notifications.*": {"queue": "notifications"},
}
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-notifications": {"task": "notifications.requeue_stuck", "schedule": 60.0},
    "purge-idempotency-keys": {
        "task": "idempotency.purge_expired",
        "schedule": 3600.0,
        "options": {"queue": "notifications"},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "notification_service-beat-schedule")

LOGGING = logging_config(SERVICE_NAME, env_str("LOG_LEVEL", "INFO"))

if not is_development():
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
