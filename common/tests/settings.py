"""A minimal Django project that exercises `common` as a service would."""

from pathlib import Path

from common.celery_config import COMMON_CELERY_SETTINGS
from common.django_settings import idempotency_settings
from common.drf import rest_framework_settings
from common.env import database_from_env, var_dir
from common.logging import logging_config
from common.testing import test_keys

SERVICE_NAME = "common_tests"
VAR_DIR = var_dir(str(Path(__file__).resolve().parent / "x" / "settings.py"))
SECRET_KEY = "common-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "common.outbox",
    "common.idempotency",
    "common.admin_health",
    "common.audit",
]
# The admin health panel's templates (common.admin_health), rendered without the admin itself.
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
MIDDLEWARE = [
    "common.middleware.CorrelationIdMiddleware",
    "common.middleware.BodySizeLimitMiddleware",
    "common.idempotency.middleware.IdempotencyMiddleware",
]
ROOT_URLCONF = "tests.urls"
DATABASES = {"default": database_from_env(sqlite_path=VAR_DIR / "common_tests.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
OTEL_TRUST_INCOMING_TRACEPARENT = False  # as at the gateway; tests that trust it say so (test_tracing.py)
REST_FRAMEWORK = rest_framework_settings(
    authentication=["common.authentication.ServiceJWTAuthentication"], throttle_rates={"tiny": "2/min"}
)
JWT_PUBLIC_KEY_PATHS = [str(test_keys.public_path)]
JWT_JWKS_URL = ""
JWT_ISSUER = "lms-user-service"
JWT_AUDIENCE = "lms"
SERVICE_KEY = "test-service-key"
UPSTREAM_URL = "http://127.0.0.1:9"  # tests point it at a local server
CELERY_APP = "tests.celery_app.app"
OUTBOX_RELAY_INTERVAL = 0.05
CELERY_BROKER_URL = ""
globals().update(COMMON_CELERY_SETTINGS)
LOGGING = logging_config(SERVICE_NAME, "INFO")
globals().update(idempotency_settings())
