"""user_service settings: every value from the environment, with a development default."""

from datetime import timedelta
from pathlib import Path

from common.celery_config import COMMON_CELERY_SETTINGS, broker_settings
from common.django_settings import (
    SERVICE_MIDDLEWARE,
    SERVICE_TEMPLATES,
    allowed_hosts,
    idempotency_settings,
    shared_cache,
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

SERVICE_NAME = "user_service"
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = var_dir(__file__)

SECRET_KEY = env_secret("DJANGO_SECRET_KEY", "dev-only-user-service-secret-key-change-me")  # Django signing key
DEBUG = env_bool("DJANGO_DEBUG", False)  # never true outside development
ALLOWED_HOSTS = allowed_hosts(["localhost", "127.0.0.1", "[::1]", "testserver", "user-service"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])  # origins allowed to post the admin forms

INSTALLED_APPS = [
    "common.admin_health",  # before the admin: its admin/index.html adds the health panel to Django's
    "users.apps.UsersAdminConfig",  # django.contrib.admin, its login form throttled like the login API
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "django_prometheus",
    "common.outbox",
    "common.idempotency",
    "common.audit",  # the security audit trail (users.signin, users.factors, users.services write it)
    "users",
]

MIDDLEWARE = SERVICE_MIDDLEWARE
ROOT_URLCONF = "user_service.urls"
WSGI_APPLICATION = "user_service.wsgi.application"

TEMPLATES = SERVICE_TEMPLATES

# DATABASE_URL (PostgreSQL in production and CI), else var/user_service.sqlite3.
DATABASES = {"default": database_from_env(sqlite_path=VAR_DIR / "user_service.sqlite3")}

AUTH_USER_MODEL = "users.User"
# The admin site's sign-in: the password, then the second factor (users.admin_auth).
AUTHENTICATION_BACKENDS = ["users.admin_auth.SecondFactorModelBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

globals().update(web_basics(var=VAR_DIR, service=SERVICE_NAME))

# --- Tokens -------------------------------------------------------------------
# The private key signs; only this service has it. Previous public keys stay in
# the JWKS (and keep verifying) until the tokens they signed have expired.
KEYS_DIR = VAR_DIR / "keys"
JWT_PRIVATE_KEY_PATH = env_str("JWT_PRIVATE_KEY_PATH", str(KEYS_DIR / "jwt_private.pem"))
JWT_PREVIOUS_PUBLIC_KEY_PATHS = env_list("JWT_PREVIOUS_PUBLIC_KEY_PATHS", [])
JWT_ISSUER = env_str("JWT_ISSUER", "lms-user-service")  # `iss` of every token
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "lms")  # `aud` every service expects
# common's verifier (the Idempotency-Key scope) reads the same keys: the public half of the private key file.
JWT_PUBLIC_KEY_PATHS = [JWT_PRIVATE_KEY_PATH, *JWT_PREVIOUS_PUBLIC_KEY_PATHS]
if is_development() and not env_str("JWT_PRIVATE_KEY_PATH"):
    from common.keys import ensure_dev_keypair

    ensure_dev_keypair(KEYS_DIR)

SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    "SIGNING_KEY": Path(JWT_PRIVATE_KEY_PATH).read_text() if Path(JWT_PRIVATE_KEY_PATH).exists() else "",
    "VERIFYING_KEY": "",  # verification picks the key by `kid` (users.tokens.KeyIdTokenBackend)
    "AUDIENCE": JWT_AUDIENCE,
    "ISSUER": JWT_ISSUER,
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_LIFETIME_SECONDS", 300)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_LIFETIME_SECONDS", 86_400)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
    "USER_ID_FIELD": "id",
    "AUTH_TOKEN_CLASSES": ("users.tokens.AccessToken",),
    "TOKEN_TYPE_CLAIM": "token_type",
    "JTI_CLAIM": "jti",
}
if not SIMPLE_JWT["SIGNING_KEY"] and not is_development():
    from common.env import ConfigurationError

    raise ConfigurationError(f"JWT_PRIVATE_KEY_PATH ({JWT_PRIVATE_KEY_PATH}) must name a readable RSA private key")

# --- Second factor (users.mfa) ------------------------------------------------
# Roles whose users must set up a second factor before they get tokens (comma-separated; empty: none).
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", ["admin"])
MFA_CHALLENGE_SECONDS = env_int("MFA_CHALLENGE_SECONDS", 300)  # how long the second step of a sign-in may wait
MFA_ISSUER = env_str("MFA_ISSUER", "Loan Management System")  # the name authenticator apps show
# Encrypts the TOTP secrets at rest and keys the recovery codes' digests. Never change it in place: every
# factor sealed with the old key stops working, and each user's factor must then be reset by an admin.
MFA_ENCRYPTION_KEY = env_secret("MFA_ENCRYPTION_KEY", "dev-only-mfa-encryption-key")

# --- API keys for client applications (users.api_keys) ---------------------------
# Keys the hash of every API key's secret: the database alone cannot check a guess. Changing it
# invalidates every key (each must be rotated).
API_KEY_HASH_KEY = env_secret("API_KEY_HASH_KEY", "dev-only-api-key-hash-key")
API_KEY_TOKEN_SECONDS = env_int("API_KEY_TOKEN_SECONDS", 300)  # lifetime of the token minted for a key
API_KEY_DEFAULT_RATE_LIMIT = env_int("API_KEY_DEFAULT_RATE_LIMIT", 120)  # requests a minute, unless set per key

# --- API ----------------------------------------------------------------------
# Only this many proxies in front of the service are trusted for X-Forwarded-For (the gateway: 1).
NUM_PROXIES = env_int("NUM_PROXIES", 1)
REST_FRAMEWORK = rest_framework_settings(
    authentication=["users.authentication.UserJWTAuthentication"],
    throttle_rates={
        "login_ip": env_str("LOGIN_RATE_PER_IP", "10/min"),  # login attempts per client IP
        "login_email": env_str("LOGIN_RATE_PER_EMAIL", "10/min"),  # login attempts per email
    },
    num_proxies=NUM_PROXIES,
)
SPECTACULAR_SETTINGS = spectacular_settings(
    title="user_service",
    description="Users, roles, agent approval, tokens and the public key set.",
    enums={"RoleEnum": "users.models.Role"},
)
# Service-to-service calls to /internal/ carry this key.
SERVICE_KEY = env_secret("SERVICE_KEY", "dev-only-service-key")
# Throttle counters, shared by every process: Redis at REDIS_URL, else a table in this service's database.
CACHES = shared_cache()
# Idempotency-Key: how long a key replays, and when a request left running is taken over.
globals().update(idempotency_settings())

# --- Events -------------------------------------------------------------------
globals().update(broker_settings(VAR_DIR))
globals().update(COMMON_CELERY_SETTINGS)
CELERY_APP = "user_service.celery.app"
OUTBOX_RELAY_INTERVAL = env_float("OUTBOX_RELAY_INTERVAL", 0.2)  # seconds between relay passes when idle

LOGGING = logging_config(SERVICE_NAME, env_str("LOG_LEVEL", "INFO"))

if not is_development():
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
