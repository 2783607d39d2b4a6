"""`X-API-Key` at the edge: a key is exchanged at user_service for a short-lived token, remembered a while.

user_service's POST /internal/api-keys/exchange answers a key with an access
token of the key's owner carrying the key's id and scopes (docs/API.md, "API
keys"). The gateway verifies that token as any other, forwards it in place of
the key (the services never see a key, and verify one kind of credential), and
remembers it per process, by a hash of the key, for GATEWAY_API_KEY_CACHE_SECONDS
(never past the token's own expiry, less a margin). So a revoked key stops
working within that time. A refused key is remembered for
GATEWAY_API_KEY_REFUSED_SECONDS, so a client retrying a bad key does not reach
user_service on every request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import urllib3
from django.conf import settings

from common.authentication import get_verifier
from common.correlation import HEADER as CORRELATION_HEADER
from common.correlation import get_correlation_id
from common.tokens import Claims, InvalidToken
from gateway.upstreams import Instance, upstreams

logger = logging.getLogger("lms.gateway")
EXCHANGE_PATH = "/internal/api-keys/exchange"
EXPIRY_MARGIN = 15.0  # seconds: a remembered token is dropped this long before it expires, so none expires in flight


class InvalidApiKey(Exception):
    """user_service refused the key: unknown, revoked, expired, or its owner can no longer act."""


class KeyCheckUnavailable(Exception):
    """No user_service instance answered the exchange: the key can be neither accepted nor refused."""


@dataclass(frozen=True)
class Grant:
    """What an accepted key is worth: the token to forward, its claims, and the key's name and own limit."""

    token: str
    claims: Claims
    key_id: int
    name: str
    rate_limit: int


class Grants:
    """Exchanged keys by the SHA-256 of the key (the key itself is not kept), bounded, each until it lapses."""

    def __init__(self, *, capacity: int, ttl: float, refused_ttl: float, clock=time.time) -> None:
        self._entries: OrderedDict[str, tuple[float, Grant | None]] = OrderedDict()
        self._capacity, self._ttl, self._refused_ttl, self._clock = capacity, ttl, refused_ttl, clock
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, Grant | None]:
        """(known, grant): a remembered grant, or a remembered refusal (True, None), or (False, None)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return False, None
            if entry[0] <= self._clock():
                del self._entries[digest]
                return False, None
            self._entries.move_to_end(digest)
            return True, entry[1]

    def put(self, digest: str, grant: Grant | None) -> None:
        now = self._clock()
        if grant is None:
            until = now + self._refused_ttl
        else:
            until = min(now + self._ttl, grant.claims.expires_at - EXPIRY_MARGIN)
        if until <= now or self._capacity <= 0:
            return
        with self._lock:
            self._entries[digest] = (until, grant)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


@lru_cache(maxsize=1)
def grants() -> Grants:
    """This process's memory of exchanged keys."""
    return Grants(
        capacity=settings.GATEWAY_API_KEY_CACHE_SIZE,
        ttl=settings.GATEWAY_API_KEY_CACHE_SECONDS,
        refused_ttl=settings.GATEWAY_API_KEY_REFUSED_SECONDS,
    )


def grant_for(key: str) -> Grant:
    """The grant of `key`, remembered or exchanged now; raises InvalidApiKey or KeyCheckUnavailable."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    known, grant = grants().get(digest)
    if known:
        if grant is None:
            raise InvalidApiKey
        return grant
    try:
        grant = _exchange(key)
    except InvalidApiKey:
        grants().put(digest, None)
        raise
    grants().put(digest, grant)
    return grant


def _exchange(key: str) -> Grant:
    """Ask user_service's instances in turn (at most two) until one answers."""
    tried: set[Instance] = set()
    for _ in range(2):
        picked = upstreams()["user"].pick(avoid=tried)
        if picked is None or picked[1] in tried:
            break
        instance = picked[1]
        tried.add(instance)
        try:
            response = instance.pool.request(
                "POST",
                EXCHANGE_PATH,
                headers={"X-API-Key": key, CORRELATION_HEADER: get_correlation_id()},
                timeout=urllib3.Timeout(connect=settings.GATEWAY_CONNECT_TIMEOUT, read=settings.GATEWAY_READ_TIMEOUT),
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            instance.breaker.record_failure()
            logger.warning("API key exchange failed", extra={"upstream_url": instance.url, "error": str(exc)})
            continue
        if response.status == 401:
            instance.breaker.record_success()
            raise InvalidApiKey
        if response.status != 200:
            instance.breaker.record_failure()
            logger.warning("API key exchange failed", extra={"upstream_url": instance.url, "status": response.status})
            continue
        instance.breaker.record_success()
        return _grant(json.loads(response.data)["data"])
    raise KeyCheckUnavailable


def _grant(data: dict) -> Grant:
    try:
        claims = get_verifier().verify(data["access"], expected_type="access")
    except InvalidToken as exc:  # user_service signed it: a token it cannot verify means a key-set mismatch
        logger.error("the token minted for an API key does not verify", extra={"error": exc.reason})
        raise KeyCheckUnavailable from exc
    key = data["api_key"]
    return Grant(data["access"], claims, int(key["id"]), str(key["name"]), int(key["rate_limit"]))
