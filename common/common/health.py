"""`/health` (liveness) and `/health/ready` (database and, when configured, broker reachable).

Readiness fails on the database alone. The broker is checked and reported,
but a broker outage leaves the service ready ("degraded"): every event goes
through the outbox, so requests still succeed and the events follow when the
broker returns. Taking every pod out of its load balancer then would turn a
delay of notifications into an outage of the whole API.
"""

from __future__ import annotations

import time
from functools import wraps

from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from common.api import both_slashes
from common.errors import ErrorCode, json_error


def get_only(view):
    """Like Django's require_GET (GET and HEAD only), but the 405 is the JSON envelope, not an empty page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = json_error(405, ErrorCode.METHOD_NOT_ALLOWED, f'Method "{request.method}" not allowed.')
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


@get_only
def liveness(request):
    """The process answers: nothing else is checked."""
    return JsonResponse({"status": "ok", "service": settings.SERVICE_NAME})


def check_database() -> dict:
    """Run `SELECT 1` on every configured database."""
    started = time.perf_counter()
    try:
        for alias in connections:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def probe_transport_options(broker_url: str, configured: dict, timeout: float) -> dict:
    """The broker's transport options with every socket wait of a probe bounded by `timeout` seconds.

    kombu's `connect_timeout` bounds AMQP's connect and handshake, but not Redis: its client has
    its own connect and read timeouts (none by default), and a Redis that accepts the connection
    and never answers the PING would hold the probe, and the page showing it, forever.
    """
    options = dict(configured)
    if broker_url.startswith(("redis://", "rediss://")):
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    return options


def check_broker(*, timeout: float = 2.0, retries: int = 1) -> dict:
    """Open (and close) a connection to the Celery broker: each connect or read waits `timeout` seconds at most.

    `retries` more attempts follow a refused one (kombu sleeps 2 s before each); 0 answers at the first failure.
    """
    from kombu import Connection

    started = time.perf_counter()
    broker_url = getattr(settings, "CELERY_BROKER_URL", "")
    configured = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    try:
        with Connection(
            broker_url,
            transport_options=probe_transport_options(broker_url, configured, timeout),
            connect_timeout=timeout,
        ) as connection:
            connection.ensure_connection(max_retries=retries, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@get_only
def readiness(request):
    """200 when the database answers (status "degraded" if the broker does not); 503 without the database."""
    checks = {"database": check_database()}
    if getattr(settings, "CELERY_BROKER_URL", ""):
        checks["broker"] = check_broker()
    ready = checks["database"]["status"] == "ok"
    degraded = ready and any(check["status"] != "ok" for check in checks.values())
    status = "degraded" if degraded else "ok" if ready else "unavailable"
    return JsonResponse(
        {"status": status, "service": settings.SERVICE_NAME, "checks": checks}, status=200 if ready else 503
    )


urlpatterns = [
    *both_slashes("health", liveness, name="health"),
    *both_slashes("health/ready", readiness, name="health-ready"),
]
