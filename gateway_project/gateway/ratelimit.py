"""Token buckets per client IP, per user or API key, and per login (IP and email); in Redis when REDIS_URL is set.

A bucket holds `capacity` tokens and refills `capacity` per minute; a request
takes one from every bucket it counts against. With Redis, every gateway
process shares the buckets (one Lua script per request for all its buckets:
one round trip, atomic); without it, or while Redis is unreachable, each
process keeps its own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger("lms.gateway")
WINDOW = 60.0  # seconds to refill a full bucket
EMAIL_MAX_LENGTH = 254  # the longest email a login may name (RFC 5321's path limit), as user_service's


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one request is allowed (0 if allowed)

    def headers(self) -> dict[str, str]:
        values = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after)
        return values


def _verdict(capacity: int, tokens: float, allowed: bool) -> Verdict:
    rate = capacity / WINDOW
    return Verdict(
        allowed=allowed,
        limit=capacity,
        remaining=max(0, int(tokens)),
        reset=math.ceil((capacity - tokens) / rate),
        retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
    )


Buckets = list[tuple[str, int]]  # (key, capacity) of each bucket a request counts against


class LocalBuckets:
    """Buckets in this process's memory; those idle for a whole window (full again) are forgotten once a window."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._pruned_at = clock()

    def take(self, wanted: Buckets) -> list[Verdict]:
        """A token from each bucket in `wanted`; the verdict of each, in order."""
        now = self._clock()
        verdicts = []
        with self._lock:
            for key, capacity in wanted:
                tokens, updated = self._buckets.get(key, (float(capacity), now))
                tokens = min(capacity, tokens + (now - updated) * capacity / WINDOW)
                allowed = tokens >= 1
                if allowed:
                    tokens -= 1
                self._buckets[key] = (tokens, now)
                verdicts.append(_verdict(capacity, tokens, allowed))
            if now - self._pruned_at >= WINDOW:  # by age, not size: a bucket idle a window is full, as if new
                self._pruned_at = now
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < WINDOW}
        return verdicts


# KEYS: the buckets; ARGV: now, the window, the largest lease, then per bucket its capacity and the tokens
# handed back (a lapsed lease's unused ones). Each bucket grants a lease of up to a quarter of its tokens
# (at least one while it has one, at most the largest lease). Returns granted, tokens left per bucket.
_TAKE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local lease_max = tonumber(ARGV[3])
local result = {}
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[2 + 2 * i])
  local returned = tonumber(ARGV[3 + 2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = tonumber(state[1]) or capacity
  local updated = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + returned + math.max(0, now - updated) * capacity / window)
  local granted = 0
  if tokens >= 1 then
    granted = math.max(1, math.min(lease_max, math.floor(tokens / 4)))
    tokens = tokens - granted
  end
  redis.call('HSET', key, 'tokens', tokens, 'updated', now)
  redis.call('EXPIRE', key, math.ceil(window * 2))
  table.insert(result, granted)
  table.insert(result, tostring(tokens))
end
return result
"""


@dataclass
class _Lease:
    """Tokens this process took from a shared bucket ahead of its requests, to spend without asking Redis."""

    held: int
    until: float  # time.monotonic() after which the unused ones go back to Redis (with the next call)
    shared: float  # the tokens left in Redis when it was taken


class RedisBuckets:
    """Buckets shared by every gateway process through Redis, in leases; local ones while Redis fails.

    A request's bucket is served from this process's lease when it holds one, else by one Lua call
    for every bucket of the request that needs Redis, which takes a new lease of up to a quarter of
    the bucket's tokens (at most RATE_LIMIT_LEASE_MAX; one token near the limit; 1 for "lease off").
    So most requests do not wait on Redis at all. What this shares, exactly:
      * across all processes a bucket never lets through more than its capacity and refill: every
        token is taken from Redis before it is spent;
      * tokens leased by one process are not available to another until they are spent or handed
        back: a lease lapses after RATE_LIMIT_LEASE_SECONDS and its unused tokens return to Redis
        with this process's next call for that bucket. So a client spread over P processes can be
        refused while up to (P - 1) leases are outstanding, each at most a quarter of what was left
        when it was taken; close to the limit leases are single tokens and the limit is exact;
      * RateLimit-Remaining counts the shared tokens at the last call plus this process's lease.
    """

    def __init__(self, url: str, *, lease_max: int | None = None, lease_seconds: float | None = None) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._take = self._client.register_script(_TAKE)
        self._fallback = LocalBuckets()
        self._lease_max = max(1, settings.RATE_LIMIT_LEASE_MAX if lease_max is None else lease_max)
        self._lease_seconds = settings.RATE_LIMIT_LEASE_SECONDS if lease_seconds is None else lease_seconds
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def take(self, wanted: Buckets) -> list[Verdict]:
        """A token from each bucket in `wanted`, from this process's leases or in one round trip; in order."""
        now = time.monotonic()
        verdicts: list[Verdict | None] = [None] * len(wanted)
        ask: list[tuple[int, int]] = []  # (index in wanted, tokens handed back)
        with self._lock:
            for index, (key, capacity) in enumerate(wanted):
                lease = self._leases.get(key)
                if lease is not None and lease.until > now and lease.held >= 1:
                    lease.held -= 1
                    verdicts[index] = _verdict(capacity, lease.shared + lease.held, True)
                    continue
                if lease is not None:
                    del self._leases[key]
                ask.append((index, lease.held if lease is not None else 0))
        if ask:
            self._ask(wanted, ask, verdicts, now)
        return [verdict for verdict in verdicts if verdict is not None]

    def _ask(self, wanted: Buckets, ask: list[tuple[int, int]], verdicts: list[Verdict | None], now: float) -> None:
        args: list[float] = [time.time(), WINDOW, self._lease_max]
        for index, returned in ask:
            args += [wanted[index][1], returned]
        try:
            reply = self._take(keys=[f"lms:rl:{wanted[index][0]}" for index, _ in ask], args=args)
        except redis.RedisError as exc:
            logger.warning("rate-limit store unavailable; limiting in-process", extra={"error": str(exc)})
            local = self._fallback.take([wanted[index] for index, _ in ask])
            for (index, _), verdict in zip(ask, local, strict=True):
                verdicts[index] = verdict
            return
        with self._lock:
            for position, (index, _) in enumerate(ask):
                key, capacity = wanted[index]
                granted, shared = int(reply[2 * position]), float(reply[2 * position + 1])
                if granted > 1:
                    # Another thread of this process may have leased meanwhile: keep its tokens too.
                    earlier = self._leases.get(key)
                    held = granted - 1 + (earlier.held if earlier is not None else 0)
                    self._leases[key] = _Lease(held, now + self._lease_seconds, shared)
                verdicts[index] = _verdict(capacity, shared + max(granted - 1, 0), granted > 0)
            if len(self._leases) > 10_000:  # lapsed leases of clients gone quiet: their tokens refill anyway
                self._leases = {key: lease for key, lease in self._leases.items() if lease.until > now}


@lru_cache(maxsize=1)
def buckets() -> LocalBuckets | RedisBuckets:
    """The bucket store of this process."""
    return RedisBuckets(settings.REDIS_URL) if settings.REDIS_URL else LocalBuckets()


def normalised_email(email: str) -> str:
    """An email as the login limits count it: trimmed and lower-cased (user_service matches emails so)."""
    return email.strip().lower()


def email_too_long(email: str) -> bool:
    """Whether a login's email is longer than any account's can be: refused before it reaches any bucket."""
    return len(email.strip()) > EMAIL_MAX_LENGTH  # as user_service's serializer measures it (before lower())


def email_key(email: str) -> str:
    """A fixed-size bucket key for an email: its normalised form hashed, so a long email cannot make a large key."""
    return hashlib.sha256(normalised_email(email).encode("utf-8", "surrogatepass")).hexdigest()


def check(
    *, client_ip: str, user_id: int | None, login_email: str | None, api_key: tuple[int, int] | None = None
) -> tuple[str, Verdict]:
    """Take a token from every bucket this request counts against; the tightest verdict and its name.

    `api_key`: (id, its own limit a minute) for a request made with an API key, whose bucket stands in for
    the owner's per-user one (a key's traffic does not eat into its owner's own, nor the other way round).
    """
    checks = [("ip", f"ip:{client_ip}", settings.RATE_LIMIT_PER_IP)]
    if api_key is not None:
        checks.append(("api_key", f"key:{api_key[0]}", api_key[1]))
    elif user_id is not None:
        checks.append(("user", f"user:{user_id}", settings.RATE_LIMIT_PER_USER))
    if login_email is not None:
        checks.append(("login", f"login:{client_ip}:{email_key(login_email)}", settings.RATE_LIMIT_LOGIN))
    taken = buckets().take([(key, capacity) for _, key, capacity in checks])
    verdicts = [(name, verdict) for (name, _, _), verdict in zip(checks, taken, strict=True)]
    refused = [item for item in verdicts if not item[1].allowed]
    if refused:
        return max(refused, key=lambda item: item[1].retry_after)
    return min(verdicts, key=lambda item: item[1].remaining)
