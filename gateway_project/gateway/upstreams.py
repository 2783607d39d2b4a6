"""Upstream services and their instances: round-robin, a circuit breaker each, active health checks."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.http import CircuitBreaker

logger = logging.getLogger("lms.gateway")


@dataclass
class Instance:
    """One process of a service, with its own connection pool and breaker."""

    url: str
    pool: urllib3.HTTPConnectionPool
    breaker: CircuitBreaker
    healthy: bool = True  # until a health check says otherwise
    latency_ms: float | None = None

    @classmethod
    def at(cls, url: str) -> Instance:
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in ("http", "https"):
            raise ImproperlyConfigured(f"Upstream instance {url!r} is not an http(s)://host:port URL.")
        pool_class = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        pool = pool_class(parts.hostname, parts.port, maxsize=settings.GATEWAY_POOL_SIZE, block=False, retries=False)
        breaker = CircuitBreaker(
            failure_threshold=settings.GATEWAY_BREAKER_FAILURES, reset_timeout=settings.GATEWAY_BREAKER_RESET_SECONDS
        )
        return cls(url=url.rstrip("/"), pool=pool, breaker=breaker)


@dataclass
class Upstream:
    name: str
    instances: list[Instance]
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self) -> Instance | None:
        """The next instance in turn that is healthy and whose breaker lets a call through; None if none."""
        start = next(self._turn)
        count = len(self.instances)
        for offset in range(count):
            instance = self.instances[(start + offset) % count]
            if instance.healthy and instance.breaker.allow():
                return instance
        return None


@lru_cache(maxsize=1)
def upstreams() -> dict[str, Upstream]:
    """Every upstream of this process, built once from settings.UPSTREAMS."""
    return {name: Upstream(name, [Instance.at(url) for url in urls]) for name, urls in settings.UPSTREAMS.items()}


def check(instance: Instance) -> bool:
    """GET /health on one instance; records its state and latency."""
    started = time.perf_counter()
    try:
        response = instance.pool.urlopen(
            "GET", "/health", timeout=urllib3.Timeout(connect=1.0, read=2.0), retries=False, redirect=False
        )
        healthy = response.status == 200
    except urllib3.exceptions.HTTPError:
        healthy = False
    instance.latency_ms = round((time.perf_counter() - started) * 1000, 2) if healthy else None
    if healthy and not instance.healthy:
        logger.info("upstream instance is back", extra={"upstream_url": instance.url})
    if not healthy and instance.healthy:
        logger.warning("upstream instance is down", extra={"upstream_url": instance.url})
    instance.healthy = healthy
    if healthy:
        instance.breaker.record_success()  # a passing health check closes an open circuit early
    return healthy


class HealthChecker(threading.Thread):
    """Checks every instance every GATEWAY_HEALTH_INTERVAL seconds, in the background of each worker."""

    def __init__(self) -> None:
        super().__init__(name="upstream-health", daemon=True)

    def run(self) -> None:
        while True:
            time.sleep(settings.GATEWAY_HEALTH_INTERVAL)
            for upstream in upstreams().values():
                for instance in upstream.instances:
                    check(instance)


_checker_lock = threading.Lock()
_checker_pid: int | None = None


def ensure_health_checks() -> None:
    """Start the checker once in this process; a forked child (a gunicorn worker) starts its own."""
    global _checker_pid
    if _checker_pid != os.getpid():
        with _checker_lock:
            if _checker_pid != os.getpid():
                HealthChecker().start()
                _checker_pid = os.getpid()
