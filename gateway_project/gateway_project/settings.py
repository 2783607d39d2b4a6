"""gateway_project settings: the one public entry. No database; every value from the environment."""

from pathlib import Path

from corsheaders.defaults import default_headers

from common.django_settings import allowed_hosts
from common.env import env_bool, env_float, env_int, env_list, env_secret, env_str, is_development
from common.logging import logging_config

SERVICE_NAME = "gateway"
BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = env_secret("DJANGO_SECRET_KEY", "dev-only-gateway-secret-key-change-me")  # Django signing key
DEBUG = env_bool("DJANGO_DEBUG", False)  # never true outside development
ALLOWED_HOSTS = allowed_hosts(["localhost", "127.0.0.1", "[::1]", "testserver", "gateway"])

INSTALLED_APPS = ["django.contrib.staticfiles", "corsheaders", "ninja", "gateway"]
MIDDLEWARE = [
    "common.middleware.CorrelationIdMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "gateway.envelope.MethodNotAllowedEnvelope",
]
ROOT_URLCONF = "gateway_project.urls"
WSGI_APPLICATION = "gateway_project.wsgi.application"
APPEND_SLASH = False  # paths are forwarded exactly as the client sent them
DATABASES: dict[str, dict[str, str]] = {}  # the gateway keeps no state of its own
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "OPTIONS": {}}]
USE_TZ = True
STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = True  # the docs page's assets without a collectstatic step
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_BODY_BYTES", 1_048_576)  # larger bodies: 413 without calling a service

# --- Upstreams: each a comma-separated list of instances, balanced round-robin ----
UPSTREAMS = {
    "user": env_list("USER_SERVICE_URLS", ["http://127.0.0.1:8001"]),
    "loan": env_list("LOAN_SERVICE_URLS", ["http://127.0.0.1:8002"]),
    "notification": env_list("NOTIFICATION_SERVICE_URLS", ["http://127.0.0.1:8003"]),
}
GATEWAY_CONNECT_TIMEOUT = env_float("GATEWAY_CONNECT_TIMEOUT", 1.0)  # seconds to open a connection
GATEWAY_READ_TIMEOUT = env_float("GATEWAY_READ_TIMEOUT", 10.0)  # seconds to wait for an upstream's answer
GATEWAY_DEADLINE = env_float("GATEWAY_DEADLINE", 15.0)  # overall seconds per request, retries included
GATEWAY_MAX_RETRIES = env_int("GATEWAY_MAX_RETRIES", 2)  # only when safe (see gateway.proxy)
GATEWAY_POOL_SIZE = env_int("GATEWAY_POOL_SIZE", 32)  # kept-alive connections per upstream instance
GATEWAY_BREAKER_FAILURES = env_int("GATEWAY_BREAKER_FAILURES", 5)  # consecutive failures that open a breaker
GATEWAY_BREAKER_RESET_SECONDS = env_float("GATEWAY_BREAKER_RESET_SECONDS", 5.0)  # open this long, then half-open
GATEWAY_HEALTH_INTERVAL = env_float("GATEWAY_HEALTH_INTERVAL", 5.0)  # seconds between active health checks
# A client must send its whole request body within this many seconds, else 408 (0: no limit); a stalled
# body otherwise holds a server thread for good (gateway.body_deadline).
GATEWAY_BODY_READ_TIMEOUT = env_float("GATEWAY_BODY_READ_TIMEOUT", 10.0)
# An upstream answer with a longer body is a 502 `upstream_reply_too_large`, read no further; the largest
# answers are statement PDFs (about 110 KB for 360 instalments and as many transactions).
GATEWAY_MAX_UPSTREAM_BYTES = env_int("GATEWAY_MAX_UPSTREAM_BYTES", 10_485_760)

# --- Edge security ---------------------------------------------------------------
JWT_PUBLIC_KEY_PATHS = env_list("JWT_PUBLIC_KEY_PATHS", [])  # PEM public keys known without asking user_service
JWT_JWKS_URL = env_str("JWT_JWKS_URL", "http://127.0.0.1:8001/api/user/.well-known/jwks.json")  # the key set
JWT_JWKS_REFRESH_COOLDOWN = env_float("JWT_JWKS_REFRESH_COOLDOWN", 30.0)  # at most one JWKS fetch per this long
GATEWAY_TOKEN_CACHE_SIZE = env_int("GATEWAY_TOKEN_CACHE_SIZE", 10_000)  # verified tokens kept per process (0: off)
GATEWAY_TOKEN_CACHE_SECONDS = env_float("GATEWAY_TOKEN_CACHE_SECONDS", 60.0)  # at most this long, never past `exp`
# X-API-Key: a key's token from user_service is kept this long per process, so a revoked key works at most
# this much longer (never past the token's expiry); a refused key is refused from memory for the second one.
GATEWAY_API_KEY_CACHE_SECONDS = env_float("GATEWAY_API_KEY_CACHE_SECONDS", 30.0)
GATEWAY_API_KEY_REFUSED_SECONDS = env_float("GATEWAY_API_KEY_REFUSED_SECONDS", 5.0)
GATEWAY_API_KEY_CACHE_SIZE = env_int("GATEWAY_API_KEY_CACHE_SIZE", 1_000)  # keys remembered per process
JWT_ISSUER = env_str("JWT_ISSUER", "lms-user-service")  # `iss` every token must carry
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "lms")  # `aud` every token must carry

REDIS_URL = env_str("REDIS_URL")  # shared rate-limit buckets across gateway processes; in-process without it
# With Redis, a process takes tokens in leases of up to this many (a quarter of what a bucket has left at
# most; 1: every request asks Redis, exact) and hands unused ones back after the seconds (gateway.ratelimit).
RATE_LIMIT_LEASE_MAX = env_int("RATE_LIMIT_LEASE_MAX", 10)
RATE_LIMIT_LEASE_SECONDS = env_float("RATE_LIMIT_LEASE_SECONDS", 1.0)
RATE_LIMIT_PER_IP = env_int("RATE_LIMIT_PER_IP", 600)  # requests a minute per client IP
RATE_LIMIT_PER_USER = env_int("RATE_LIMIT_PER_USER", 300)  # requests a minute per signed-in user
RATE_LIMIT_LOGIN = env_int("RATE_LIMIT_LOGIN", 10)  # login attempts a minute per client IP and email
# /metrics answers only clients in these networks ("anyone on the internal network"); others get 404.
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
)
NUM_PROXIES = env_int("NUM_PROXIES", 0)  # trusted proxies in front of the gateway (their X-Forwarded-For is kept)
# A client's traceparent / tracestate / baggage is dropped unless this is true: each request a new trace,
# so no client can graft itself onto the internal traces (common.tracing, gateway.proxy).
OTEL_TRUST_INCOMING_TRACEPARENT = env_bool("OTEL_TRUST_INCOMING_TRACEPARENT", False)

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])  # browser origins allowed to call the API
CORS_ALLOW_CREDENTIALS = False  # tokens travel in the Authorization header, never in cookies
# A browser may send its own correlation id, and an Idempotency-Key on writes.
CORS_ALLOW_HEADERS = (*default_headers, "x-correlation-id", "idempotency-key", "x-api-key")
CORS_EXPOSE_HEADERS = [
    "X-Correlation-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Idempotent-Replayed",  # a reply repeated for an Idempotency-Key
]

LOGGING = logging_config(SERVICE_NAME, env_str("LOG_LEVEL", "INFO"))

if not is_development():
    SECURE_CONTENT_TYPE_NOSNIFF = True
