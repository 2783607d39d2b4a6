"""The delivery rules that need no framework: the channels, the retry schedule and the checks settings run at start.

Settings import this module, so it imports no Django.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from common.env import ConfigurationError

IN_APP = "in_app"
CHANNELS = ("email", "sms", "push", IN_APP)  # the values Notification.Channel and its check constraint allow


def retry_delay(retries: int, *, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `retries + 1`: exponential backoff with full jitter.

    The bound doubles from `base` with every retry and never exceeds `cap`; the delay is
    drawn uniformly below it, so workers that failed together do not retry together.
    """
    return rng() * backoff_bound(retries, base=base, cap=cap)


def backoff_bound(retries: int, *, base: float, cap: float) -> float:
    """The longest delay retry number `retries + 1` may wait: `base * 2**retries`, at most `cap`."""
    if base <= 0 or cap <= 0:
        return 0.0
    # Past 2**64 the doubled base is above any sensible cap; stop doubling before floats overflow.
    return float(min(cap, base * 2 ** min(retries, 64)))


def longest_retry_delay(*, base: float, cap: float, max_retries: int) -> float:
    """The longest countdown any retry of a task allowed `max_retries` retries can get."""
    if max_retries <= 0:
        return 0.0
    return backoff_bound(max_retries - 1, base=base, cap=cap)


def check_channels(channels: list[str]) -> list[str]:
    """The configured extra channels, or ConfigurationError naming an unknown one."""
    unknown = [channel for channel in channels if channel not in CHANNELS]
    if unknown:
        raise ConfigurationError(
            f"NOTIFICATION_CHANNELS has unknown channel(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(CHANNELS)}"
        )
    return channels


def check_visibility_timeout(transport_options: dict, *, longest_delay: float) -> None:
    """Refuse a Redis visibility timeout not longer than the longest retry countdown.

    Redis hands a task that is still waiting for its countdown to another worker once
    the visibility timeout has passed, so a shorter timeout delivers it twice.
    """
    timeout = transport_options.get("visibility_timeout")
    if timeout is not None and timeout <= longest_delay:
        raise ConfigurationError(
            f"CELERY_VISIBILITY_TIMEOUT ({timeout} s) must be longer than the longest retry delay "
            f"({longest_delay:g} s, from NOTIFICATION_RETRY_BACKOFF_SECONDS, NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS "
            "and the retry caps); raise it or lower the backoff"
        )
