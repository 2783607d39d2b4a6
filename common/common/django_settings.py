"""The Django settings every service shares; each service's settings.py adds what is its own.

Used as `MIDDLEWARE = SERVICE_MIDDLEWARE` and `globals().update(web_basics(...))`,
so a service's settings still read top to bottom in one file.
"""

from __future__ import annotations

from pathlib import Path

from common.env import env_bool, env_int, env_list, env_networks, env_str
from common.idempotency import DEFAULT_KEY_TTL_SECONDS, DEFAULT_LOCK_SECONDS

SERVICE_MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "common.middleware.CorrelationIdMiddleware",
    "common.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After auth and messages: ends admin sessions past their limits or whose account user_service dropped.
    "common.admin_sso.AdminSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Innermost: its transaction wraps the view alone, and its replays, 409s and 422s leave through every
    # middleware above (correlation id, security headers, metrics). Bodies over the limit were refused before.
    "common.idempotency.middleware.IdempotencyMiddleware",
]

SERVICE_TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


# Page numbers of a list reach this row at most (page x page_size); deeper pages are read by cursor.
DEFAULT_MAX_PAGE_DEPTH = 10_000


def allowed_hosts(default: list[str]) -> list[str]:
    """ALLOWED_HOSTS (a comma-separated list; `default` without it), and POD_IP when it is set.

    Kubernetes gives each pod its address in POD_IP (the downward API): Prometheus
    scrapes every pod by that address, so each replica is counted on its own.
    """
    hosts = env_list("ALLOWED_HOSTS", default)
    pod_ip = env_str("POD_IP", "")
    return [*hosts, pod_ip] if pod_ip and pod_ip not in hosts else hosts


def web_basics(*, var: Path, service: str) -> dict:
    """Time zone, static files (the admin's, served by WhiteNoise), the request body limit, the page depth and
    the admin's cookies and session limits."""
    static_root = var / "static" / service
    static_root.mkdir(parents=True, exist_ok=True)
    max_seconds = env_int("ADMIN_SESSION_MAX_SECONDS", 8 * 3600)
    return {
        "LANGUAGE_CODE": "en-us",
        "TIME_ZONE": "UTC",
        "USE_I18N": True,
        "USE_TZ": True,
        "APPEND_SLASH": False,  # API paths answer with and without the slash themselves
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "STATIC_URL": "static/",
        "STATIC_ROOT": static_root,
        "WHITENOISE_USE_FINDERS": True,  # admin assets without a collectstatic step
        "DATA_UPLOAD_MAX_MEMORY_SIZE": env_int("MAX_BODY_BYTES", 1_048_576),  # larger bodies get 413
        # Cookies are per host, not per port: one name per service, so that signing in to one admin does
        # not sign the operator out of another on the same host.
        "SESSION_COOKIE_NAME": f"{service}_sessionid",
        "CSRF_COOKIE_NAME": f"{service}_csrftoken",
        # The deepest row a ?page= may reach (an OFFSET); past it a 400 points at ?cursor=.
        "MAX_PAGE_DEPTH": env_int("MAX_PAGE_DEPTH", DEFAULT_MAX_PAGE_DEPTH),
        # The Django admin is reached on the service's own port, where anyone can write X-Forwarded-For:
        # its sign-in limits read that header only from these peers (addresses or CIDRs; none by default).
        "ADMIN_TRUSTED_PROXIES": env_networks("ADMIN_TRUSTED_PROXIES", []),
        # An admin session (common.admin_sso.AdminSessionMiddleware) ends this long after its sign-in, however
        # busy (8 h, a working day), and after this long without a request (30 min).
        "ADMIN_SESSION_MAX_SECONDS": max_seconds,
        "ADMIN_SESSION_IDLE_SECONDS": env_int("ADMIN_SESSION_IDLE_SECONDS", 1800),
        "SESSION_COOKIE_AGE": max_seconds,  # the cookie need not outlive the session (Django's default: 2 weeks)
        # An admin signed in through user_service is re-checked there (active, still admin) when its last
        # answer is older than this; if user_service does not answer then, the admin refuses (fail closed).
        "ADMIN_ACCOUNT_RECHECK_SECONDS": env_int("ADMIN_ACCOUNT_RECHECK_SECONDS", 30),
        # A traceparent in a request is continued (common.tracing): a service's callers are the gateway,
        # which starts a new trace for every client request, and the other services. The gateway's is false.
        "OTEL_TRUST_INCOMING_TRACEPARENT": env_bool("OTEL_TRUST_INCOMING_TRACEPARENT", True),
    }


def token_verification(*, var: Path) -> dict:
    """How a service without the private key verifies tokens: PEM files and/or user_service's JWKS."""
    return {
        "JWT_PUBLIC_KEY_PATHS": env_list("JWT_PUBLIC_KEY_PATHS", [str(var / "keys" / "jwt_public.pem")]),
        "JWT_JWKS_URL": env_str("JWT_JWKS_URL", ""),  # fetched when a token names an unknown `kid`
        "JWT_ISSUER": env_str("JWT_ISSUER", "lms-user-service"),  # `iss` every token must carry
        "JWT_AUDIENCE": env_str("JWT_AUDIENCE", "lms"),  # `aud` every token must carry
    }


def idempotency_settings() -> dict:
    """How long an Idempotency-Key replays, and how long its first request may run before another takes over."""
    return {
        # A repeated key replays the first reply this long (24 h); after that it counts as new.
        "IDEMPOTENCY_KEY_TTL_SECONDS": env_int("IDEMPOTENCY_KEY_TTL_SECONDS", DEFAULT_KEY_TTL_SECONDS),
        # A request "running" longer than this is taken for dead: the next one with its key runs instead.
        "IDEMPOTENCY_LOCK_SECONDS": env_int("IDEMPOTENCY_LOCK_SECONDS", DEFAULT_LOCK_SECONDS),
    }


# The database cache's table; a service creates it in a migration (`createcachetable lms_cache`).
CACHE_TABLE = "lms_cache"


def shared_cache() -> dict:
    """CACHES for counters every process of a service must share (login throttles).

    Redis at REDIS_URL when set: use it in production. Otherwise a table in the service's
    own database, not per-process memory: `up` runs several workers (and a deployment
    several hosts), and each counting alone would multiply every limit by their number.
    """
    url = env_str("REDIS_URL")
    if url:
        return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": CACHE_TABLE,
            # Shared by every process, but a plain table, for development and small deployments: use
            # Redis (REDIS_URL) in production. Every write also runs SELECT COUNT(*) on the table. Past
            # MAX_ENTRIES rows Django culls: expired rows first, then, if still over, the first tenth
            # (1/CULL_FREQUENCY) of the rest in key order, live counters included. A counter lives for
            # its rate's period (a minute by default), so only a flood of over 100,000 distinct emails
            # or addresses within one period culls, and that can reset some real counters. Django's
            # default, 300 rows culled by a third, would drop real counters in an ordinary busy minute.
            "OPTIONS": {"MAX_ENTRIES": 100_000, "CULL_FREQUENCY": 10},
        }
    }
