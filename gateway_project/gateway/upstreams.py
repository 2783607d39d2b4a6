"""Upstream services, their weighted instance groups and instances: round-robin in a group, a breaker each.

Health checks: gateway.health. Which group a client goes to: gateway.weighting.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.http import CircuitBreaker
from gateway import weighting
from gateway.connections import ConnectionPool


@dataclass(eq=False)  # an instance is itself: compared and hashed by identity
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
class Group:
    """Instances of one deployment of a service, sharing a weight of its traffic."""

    name: str
    weight: int
    instances: list[Instance]
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self, avoid: Collection[Instance] = ()) -> Instance | None:
        """The next instance in turn, not in `avoid`, that is healthy and whose breaker lets a call through."""
        start = next(self._turn)
        count = len(self.instances)
        for offset in range(count):
            instance = self.instances[(start + offset) % count]
            if instance not in avoid and instance.healthy and instance.breaker.allow():
                return instance
        return None


@dataclass
class Upstream:
    """A service: its groups (one, unless weighted routing is configured) and all their instances."""

    name: str
    groups: list[Group]

    @property
    def instances(self) -> list[Instance]:
        return [instance for group in self.groups for instance in group.instances]

    @property
    def canary(self) -> Group:
        """The group listed last: the newest deployment, which testers can ask for."""
        return self.groups[-1]

    def pick(
        self, identity: int | str | None = None, *, canary: bool = False, avoid: Collection[Instance] = ()
    ) -> tuple[Group, Instance] | None:
        """The group of the client with `identity` and an instance of it; another group if that one has none.

        `canary`: the newest group whatever the weights, while it has an
        instance. Without an identity, a plain round-robin upstream turns as
        before; a weighted one places the call at random. `avoid`: instances
        this request already failed on, taken again only when nothing else is.
        """
        return self._pick(identity, canary, avoid) or (self._pick(identity, canary, ()) if avoid else None)

    def _pick(
        self, identity: int | str | None, canary: bool, avoid: Collection[Instance]
    ) -> tuple[Group, Instance] | None:
        if canary and len(self.groups) > 1 and (instance := self.canary.pick(avoid)) is not None:
            return self.canary, instance
        if len(self.groups) == 1:
            instance = self.groups[0].pick(avoid)
            return (self.groups[0], instance) if instance is not None else None
        point = weighting.point_for(identity) if identity is not None else random.random()  # noqa: S311
        picked: dict[int, Instance] = {}

        def unavailable(index: int) -> bool:
            instance = self.groups[index].pick(avoid)
            if instance is not None:
                picked[index] = instance
            return instance is None

        chosen = weighting.choose(point, [group.weight for group in self.groups], unavailable)
        return (self.groups[chosen], picked[chosen]) if chosen is not None else None


def build(name: str, items: list[str]) -> Upstream:
    """The upstream `name` from its *_SERVICE_URLS items; ImproperlyConfigured when they cannot be read."""
    try:
        specs = weighting.parse_groups(items)
    except weighting.BadGroups as exc:
        raise ImproperlyConfigured(f"{name.upper()}_SERVICE_URLS: {exc}.") from exc
    groups = [Group(spec.name, spec.weight, [Instance.at(url) for url in spec.urls]) for spec in specs]
    return Upstream(name, groups)


@lru_cache(maxsize=1)
def upstreams() -> dict[str, Upstream]:
    """Every upstream of this process, built once from settings.UPSTREAMS."""
    return {name: build(name, items) for name, items in settings.UPSTREAMS.items()}
