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


# KEYS: the buckets; ARGV: now, the window, then each bucket's capacity. Returns allowed, tokens per bucket.
_TAKE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local result = {}
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[2 + i])
  local state = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = tonumber(state[1]) or capacity
  local updated = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - updated) * capacity / window)
  local allowed = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  end
  redis.call('HSET', key, 'tokens', tokens, 'updated', now)
  redis.call('EXPIRE', key, math.ceil(window * 2))
  table.insert(result, allowed)
  table.insert(result, tostring(tokens))
end
return result
"""


class RedisBuckets:
    """Buckets shared by every gateway process through Redis; falls back to local ones if Redis fails."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._take = self._client.register_script(_TAKE)
        self._fallback = LocalBuckets()

    def take(self, wanted: Buckets) -> list[Verdict]:
        """A token from each bucket in `wanted`, in one round trip; the verdict of each, in order."""
        keys = [f"lms:rl:{key}" for key, _ in wanted]
        try:
            reply = self._take(keys=keys, args=[time.time(), WINDOW, *(capacity for _, capacity in wanted)])
        except redis.RedisError as exc:
            logger.warning("rate-limit store unavailable; limiting in-process", extra={"error": str(exc)})
            return self._fallback.take(wanted)
        return [
            _verdict(capacity, float(reply[2 * i + 1]), bool(reply[2 * i])) for i, (_, capacity) in enumerate(wanted)
        ]


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
