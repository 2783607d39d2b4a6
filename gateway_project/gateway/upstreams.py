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
from gateway.connections import ConnectionPool


@dataclass
class Instance:
    """One process of a service, with its own connections and breaker.

    `connections` carry proxied requests (gateway.connections); `pool`, urllib3's,
    the health checks and the fetching of the service's OpenAPI document.
    """

    url: str
    connections: ConnectionPool
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
        connections = ConnectionPool(parts.scheme, parts.hostname, parts.port, maxsize=settings.GATEWAY_POOL_SIZE)
        pool_class = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        pool = pool_class(parts.hostname, parts.port, maxsize=2, block=False, retries=False)
        breaker = CircuitBreaker(
            failure_threshold=settings.GATEWAY_BREAKER_FAILURES, reset_timeout=settings.GATEWAY_BREAKER_RESET_SECONDS
        )
        return cls(url=url.rstrip("/"), connections=connections, pool=pool, breaker=breaker)


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
