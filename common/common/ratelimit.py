"""The headers of a 429 (API.md): Retry-After and RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset.

DRF raises `Throttled` with the longest wait of the throttles that refused and
forgets which ones they were, so the refusing throttle is found again by
reading (never writing) the counters DRF's cache-based throttles keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle


@dataclass(frozen=True)
class Refusal:
    """A throttle that is out of requests: its limit and the seconds until one, or all, are available again."""

    limit: int
    retry_after: float
    reset: float


def rate_limit_headers(wait: float | None, context: dict) -> dict[str, str]:
    """The 429 headers for a DRF `Throttled` with this `wait`, raised in the view of `context`."""
    refusal = refusing_throttle(context.get("request"), context.get("view"))
    retry_after = wait if wait is not None else (refusal.retry_after if refusal else None)
    headers = {"RateLimit-Remaining": "0"}
    if retry_after is not None:
        headers["Retry-After"] = str(_seconds(retry_after))
    reset = max(refusal.reset, retry_after or 0) if refusal else retry_after
    if reset is not None:
        headers["RateLimit-Reset"] = str(_seconds(reset))
    if refusal is not None:
        headers["RateLimit-Limit"] = str(refusal.limit)
    return headers


def refusing_throttle(request, view) -> Refusal | None:
    """Of the view's cache-based throttles, the exhausted one with the longest wait (the one DRF reported)."""
    if request is None or view is None or not hasattr(view, "get_throttles"):
        return None
    refusals = [refusal for throttle in view.get_throttles() if (refusal := _refusal(throttle, request, view))]
    return max(refusals, key=lambda refusal: refusal.retry_after, default=None)


def _refusal(throttle, request, view) -> Refusal | None:
    if not isinstance(throttle, SimpleRateThrottle) or not _prepare(throttle, view):
        return None
    key = throttle.get_cache_key(request, view)
    if key is None:
        return None
    now = throttle.timer()
    history = [moment for moment in throttle.cache.get(key, []) if moment > now - throttle.duration]
    if not history or len(history) < throttle.num_requests:
        return None
    # The history is newest first: one request is free when the oldest ages out, all when the newest does.
    return Refusal(
        limit=throttle.num_requests,
        retry_after=throttle.duration - (now - history[-1]),
        reset=throttle.duration - (now - history[0]),
    )


def _prepare(throttle: SimpleRateThrottle, view) -> bool:
    """Give the throttle its rate, as its allow_request would; False when it has none (it never throttles)."""
    if isinstance(throttle, ScopedRateThrottle):
        throttle.scope = getattr(view, throttle.scope_attr, None)
        if not throttle.scope:
            return False
        throttle.rate = throttle.get_rate()
        throttle.num_requests, throttle.duration = throttle.parse_rate(throttle.rate)
    return throttle.rate is not None


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))
