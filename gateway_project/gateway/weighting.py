"""Weighted instance groups for gradual releases: the configuration, and which group a client is sent to. Pure.

An upstream's `*_SERVICE_URLS` is either a plain list of instances (one group,
as before) or a list of groups with weights, the newest deployment last:

    http://loan-a:8002,http://loan-b:8002                         one group, round-robin
    http://loan-v1:8002*90,http://loan-v2:8002*10                 a group per instance, named by host:port
    stable*90=http://loan-a:8002 http://loan-b:8002,canary*10=http://loan-v2:8002

A client is placed at a point of [0, 1) by its identity (user id, API key, or
address) and the groups share the interval in proportion to their weights, so
a client stays in one group while the weights stay. Consecutive integer ids
(user ids) are spread by the golden-ratio sequence, which covers the interval
far more evenly than a hash: 1,000 consecutive users split within a fraction
of a percentage point of the weights. Other identities are hashed.

When a client's group has no instance to take the call, the client's position
inside that group's share is laid over the groups that are left, again by
weight: a dead group's clients spread over the live ones in proportion to
their weights, and no client of a live group moves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

GOLDEN = 0.6180339887498949  # frac(golden ratio): consecutive multiples are spread evenly over [0, 1)
DEFAULT_GROUP = "default"


class BadGroups(ValueError):
    """The *_SERVICE_URLS value cannot be read as instances or weighted groups."""


@dataclass(frozen=True)
class GroupSpec:
    """One group of an upstream as configured: its name, weight and instance URLs."""

    name: str
    weight: int
    urls: tuple[str, ...]


def parse_groups(items: Sequence[str]) -> list[GroupSpec]:
    """The groups that the comma-separated items of a *_SERVICE_URLS value describe; raises BadGroups."""
    if not items:
        raise BadGroups("no instance is configured")
    weighted = [_is_weighted(item) for item in items]
    if not any(weighted):
        return [GroupSpec(DEFAULT_GROUP, 100, tuple(items))]
    if not all(weighted):
        raise BadGroups("either every item has a weight (url*weight or name*weight=urls) or none has")
    groups = [_group(item) for item in items]
    names = [group.name for group in groups]
    if len(set(names)) != len(names):
        raise BadGroups(f"group names repeat: {', '.join(names)}")
    if not any(group.weight for group in groups):
        raise BadGroups("every group has weight 0: no traffic could go anywhere")
    return groups


def _is_weighted(item: str) -> bool:
    return _is_named(item) or "*" in item


def _is_named(item: str) -> bool:
    """Whether the item is `name*weight=urls`: an `=` before the first URL's scheme."""
    scheme_at = item.find("://")
    return "=" in (item[:scheme_at] if scheme_at >= 0 else item)


def _group(item: str) -> GroupSpec:
    if _is_named(item):
        label, _, urls = item.partition("=")
        name, weight = _weighted(label.strip(), item)
        instances = tuple(url for url in urls.split() if url)
        if not instances:
            raise BadGroups(f"group {name!r} has no instance")
        return GroupSpec(name, weight, instances)
    url, weight = _weighted(item.strip(), item)
    parts = urlsplit(url)
    return GroupSpec(parts.netloc or url, weight, (url,))


def _weighted(text: str, item: str) -> tuple[str, int]:
    value, star, weight = text.rpartition("*")
    if not star or not value:
        raise BadGroups(f"{item!r}: expected name*weight=urls or url*weight")
    try:
        number = int(weight)
    except ValueError:
        raise BadGroups(f"{item!r}: the weight {weight!r} is not a whole number") from None
    if not 0 <= number <= 10_000:
        raise BadGroups(f"{item!r}: a weight is between 0 and 10000")
    return value, number


def point_for(identity: int | str) -> float:
    """Where a client stands in [0, 1): the golden-ratio sequence for integer ids, a hash for anything else."""
    if isinstance(identity, int):
        return (identity * GOLDEN) % 1.0
    digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose(point: float, weights: Sequence[int], unavailable: Callable[[int], bool]) -> int | None:
    """The index of the group for a client at `point`, skipping groups for which `unavailable(index)` holds.

    `unavailable` is asked at most once per group, and only about groups this
    client would be sent to; None when every group with a weight is unavailable.
    """
    candidates = [index for index, weight in enumerate(weights) if weight > 0]
    while candidates:
        total = sum(weights[index] for index in candidates)
        start = 0.0
        for index in candidates:
            width = weights[index] / total
            if point < start + width or index == candidates[-1]:
                break
            start += width
        if not unavailable(index):
            return index
        point = min(max((point - start) / width, 0.0), 0.999_999_999_999)  # the client's place inside that share
        candidates.remove(index)
    return None
