"""Token buckets per client IP, per user and per login (IP and email); in Redis when REDIS_URL is set.

A bucket holds `capacity` tokens and refills `capacity` per minute; a request
takes one. With Redis, every gateway process shares the buckets (one Lua
script per check, atomic); without it, or while Redis is unreachable, each
process keeps its own.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger("lms.gateway")
WINDOW = 60.0  # seconds to refill a full bucket


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


class LocalBuckets:
    """Buckets in this process's memory."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, capacity: int) -> Verdict:
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(key, (float(capacity), now))
            tokens = min(capacity, tokens + (now - updated) * capacity / WINDOW)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < WINDOW}
        return _verdict(capacity, tokens, allowed)


_TAKE = """
local capacity = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local rate = capacity / tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'updated', now)
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 2))
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets shared by every gateway process through Redis; falls back to local ones if Redis fails."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._take = self._client.register_script(_TAKE)
        self._fallback = LocalBuckets()

    def take(self, key: str, capacity: int) -> Verdict:
        try:
            allowed, tokens = self._take(keys=[f"lms:rl:{key}"], args=[capacity, time.time(), WINDOW])
        except redis.RedisError as exc:
            logger.warning("rate-limit store unavailable; limiting in-process", extra={"error": str(exc)})
            return self._fallback.take(key, capacity)
        return _verdict(capacity, float(tokens), bool(allowed))


@lru_cache(maxsize=1)
def buckets() -> LocalBuckets | RedisBuckets:
    """The bucket store of this process."""
    return RedisBuckets(settings.REDIS_URL) if settings.REDIS_URL else LocalBuckets()


def check(*, client_ip: str, user_id: int | None, login_email: str | None) -> tuple[str, Verdict]:
    """Take a token from every bucket this request counts against; the tightest verdict and its name."""
    checks = [("ip", f"ip:{client_ip}", settings.RATE_LIMIT_PER_IP)]
    if user_id is not None:
        checks.append(("user", f"user:{user_id}", settings.RATE_LIMIT_PER_USER))
    if login_email is not None:
        checks.append(("login", f"login:{client_ip}:{login_email.strip().lower()}", settings.RATE_LIMIT_LOGIN))
    verdicts = [(name, buckets().take(key, capacity)) for name, key, capacity in checks]
    refused = [item for item in verdicts if not item[1].allowed]
    if refused:
        return max(refused, key=lambda item: item[1].retry_after)
    return min(verdicts, key=lambda item: item[1].remaining)
