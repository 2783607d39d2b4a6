"""Upstream services and their instances: round-robin, a circuit breaker each (health checks: gateway.health)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.http import CircuitBreaker
from gateway.deadline import DeadlineHTTPConnection, DeadlineHTTPSConnection


@dataclass
class Instance:
    """One process of a service, with its own connection pool and breaker."""

    url: str
    pool: urllib3.HTTPConnectionPool
    breaker: CircuitBreaker
    healthy: bool = True  # until a health check says otherwise
    latency_ms: float | None = None
    checked_at: float | None = None  # time.monotonic() of the last health check; None before the first

    @classmethod
    def at(cls, url: str) -> Instance:
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in ("http", "https"):
            raise ImproperlyConfigured(f"Upstream instance {url!r} is not an http(s)://host:port URL.")
        pool_class = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        pool = pool_class(parts.hostname, parts.port, maxsize=settings.GATEWAY_POOL_SIZE, block=False, retries=False)
        # every read of a proxied request bounded by its overall deadline (gateway.deadline)
        pool.ConnectionCls = DeadlineHTTPSConnection if parts.scheme == "https" else DeadlineHTTPConnection
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
