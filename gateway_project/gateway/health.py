"""Active health checks of every upstream instance, in the background, and the cached view the probes serve.

Each worker process runs one HealthChecker thread: it checks every instance
at once, then every GATEWAY_HEALTH_INTERVAL seconds. `/health`,
`/health/ready` and `/metrics` only read what it found (and the breakers'
states), so a probe or a flood of them never calls an upstream.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from gateway.upstreams import Instance, Upstream, upstreams

logger = logging.getLogger("lms.gateway")
CHECK_TIMEOUT = urllib3.Timeout(connect=1.0, read=2.0)


def check(instance: Instance) -> bool:
    """GET /health on one instance; records whether it passed, its latency and when.

    A passing check does not close the instance's breaker: only a real request does
    (the half-open trial), so an instance that answers its health check but fails
    requests stays out of rotation.
    """
    started = time.perf_counter()
    try:
        response = instance.pool.urlopen("GET", "/health", timeout=CHECK_TIMEOUT, retries=False, redirect=False)
        healthy = response.status == 200
    except urllib3.exceptions.HTTPError:
        healthy = False
    instance.latency_ms = round((time.perf_counter() - started) * 1000, 2) if healthy else None
    if healthy and not instance.healthy:
        logger.info("upstream instance is back", extra={"upstream_url": instance.url})
    if not healthy and instance.healthy:
        logger.warning("upstream instance is down", extra={"upstream_url": instance.url})
    instance.healthy = healthy
    instance.checked_at = time.monotonic()
    return healthy


class HealthChecker(threading.Thread):
    """Checks every instance now and then every GATEWAY_HEALTH_INTERVAL seconds; `rounds` counts full passes."""

    def __init__(self) -> None:
        super().__init__(name="upstream-health", daemon=True)
        self.rounds = 0

    def run(self) -> None:
        while True:
            self.check_all()
            time.sleep(settings.GATEWAY_HEALTH_INTERVAL)

    def check_all(self) -> None:
        """One round over every instance, concurrently, so one hanging instance delays no other.

        Daemon threads, not an executor: a worker that exits never waits for a check.
        """
        try:
            instances = [instance for upstream in upstreams().values() for instance in upstream.instances]
        except ImproperlyConfigured:  # nothing to check; /health/ready answers 503 "misconfigured"
            logger.exception("upstream health checks cannot run")
            return
        threads = [threading.Thread(target=check, args=(instance,), daemon=True) for instance in instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.rounds += 1


_checker_lock = threading.Lock()
_checker: HealthChecker | None = None
_checker_pid: int | None = None


def _running() -> HealthChecker | None:
    checker = _checker
    if checker is not None and _checker_pid == os.getpid() and checker.is_alive():
        return checker
    return None


def ensure_health_checks() -> HealthChecker:
    """This process's checker, started if it is not running (a forked gunicorn worker starts its own)."""
    global _checker, _checker_pid
    checker = _running()
    if checker is not None:
        return checker
    with _checker_lock:
        checker = _running()
        if checker is None:
            checker = HealthChecker()
            checker.start()
            _checker, _checker_pid = checker, os.getpid()
        return checker


def instance_state(instance: Instance) -> dict[str, Any]:
    """What the checker last saw of an instance, and its breaker; up means checked, passing, breaker not open."""
    breaker = instance.breaker.state
    checked = instance.checked_at is not None
    up = checked and instance.healthy and breaker != "open"
    return {
        "status": "up" if up else "down",
        "breaker": breaker,
        "latency_ms": instance.latency_ms,
        "checked_seconds_ago": round(time.monotonic() - instance.checked_at, 1) if checked else None,
    }


def service_state(upstream: Upstream) -> dict[str, Any]:
    """A service is up when one of its instances is; its latency is its fastest live instance's."""
    instances = {instance.url: instance_state(instance) for instance in upstream.instances}
    live = [state for state in instances.values() if state["status"] == "up"]
    latencies = [state["latency_ms"] for state in live if state["latency_ms"] is not None]
    fastest = min(latencies) if latencies else None
    state: dict[str, Any] = {"status": "up" if live else "down", "latency_ms": fastest, "instances": instances}
    if len(upstream.groups) > 1:  # weighted routing: each group's weight and whether it takes its share
        state["groups"] = {
            group.name: {
                "weight": group.weight,
                "status": "up" if any(instances[i.url]["status"] == "up" for i in group.instances) else "down",
                "instances": [instance.url for instance in group.instances],
            }
            for group in upstream.groups
        }
    return state


def aggregate() -> tuple[int, dict[str, Any]]:
    """GET /health: every service from the cached checks; 200 when all are up, else 503.

    Calls no upstream, even before the checker's first round is done: an
    instance not checked yet is not known to be up, so it counts as down.
    """
    ensure_health_checks()
    try:
        configured = upstreams()
    except ImproperlyConfigured:
        return 503, {"status": "degraded", "services": {}}
    services = {name: service_state(upstream) for name, upstream in configured.items()}
    all_up = bool(services) and all(service["status"] == "up" for service in services.values())
    return (200 if all_up else 503), {"status": "ok" if all_up else "degraded", "services": services}


def public_view(body: dict[str, Any]) -> dict[str, Any]:
    """A health body for callers outside the internal networks: each service's up/down, no instance.

    Instance addresses, breakers and latencies map the internal network, so only internal callers (the
    networks /metrics answers) see them; the services keep SERVICE_KEY from the gateway, so an internal
    caller is told by its address, as for /metrics.
    """
    services = {name: {"status": service["status"]} for name, service in body["services"].items()}
    return {**body, "services": services}


def readiness() -> tuple[int, dict[str, Any]]:
    """GET /health/ready: 200 once the upstreams are configured and the checker has run, whatever is down."""
    try:
        configured = upstreams()
    except ImproperlyConfigured as exc:
        logger.error("the gateway is not configured", extra={"error": str(exc)})
        return 503, {"status": "misconfigured", "services": {}}
    without_instances = [name for name, upstream in configured.items() if not upstream.instances]
    if not configured or without_instances:
        return 503, {"status": "misconfigured", "services": {}, "without_instances": without_instances}
    services = {name: service_state(upstream) for name, upstream in configured.items()}
    if ensure_health_checks().rounds == 0:
        return 503, {"status": "starting", "services": services}
    return 200, {"status": "ready", "services": services}
