"""Leased rate-limit tokens on a real Redis: fewer round trips, never more than a bucket's capacity in all."""

import math
import threading
import time
import uuid

import pytest

from gateway.ratelimit import WINDOW, RedisBuckets
from tests.conftest import redis_or_skip


@pytest.fixture
def redis_url():
    return redis_or_skip()


@pytest.fixture
def key():
    return f"lease-{uuid.uuid4().hex}"


def _counting(buckets: RedisBuckets) -> list[int]:
    """Count the Lua calls `buckets` makes to Redis (each still goes to Redis)."""
    calls = [0]
    script = buckets._take

    def counted(*args, **kwargs):
        calls[0] += 1
        return script(*args, **kwargs)

    buckets._take = counted
    return calls


def test_a_process_asks_redis_once_a_lease_and_counts_down_exactly(redis_url, key):
    buckets = RedisBuckets(redis_url, lease_max=10, lease_seconds=30)
    calls = _counting(buckets)

    verdicts = [buckets.take([(key, 600)])[0] for _ in range(100)]

    assert all(verdict.allowed for verdict in verdicts)
    assert [verdict.remaining for verdict in verdicts] == list(range(599, 499, -1))
    assert calls[0] == 10


def test_lease_off_asks_redis_for_every_request(redis_url, key):
    buckets = RedisBuckets(redis_url, lease_max=1)
    calls = _counting(buckets)

    verdicts = [buckets.take([(key, 600)])[0] for _ in range(20)]

    assert [verdict.remaining for verdict in verdicts] == list(range(599, 579, -1))
    assert calls[0] == 20


def test_near_the_limit_leases_are_single_tokens_so_small_limits_are_exact(redis_url, key):
    first, second = RedisBuckets(redis_url, lease_max=10), RedisBuckets(redis_url, lease_max=10)

    allowed = [process.take([(key, 8)])[0].allowed for process in (first, second) * 6]

    # A quarter of 8 is 2: the first lease strands one token at `first` while `second` asks; the rest are 1.
    assert allowed.count(True) == 8
    assert allowed[-2:] == [False, False]


def test_processes_sharing_a_bucket_never_let_through_more_than_its_capacity(redis_url, key):
    capacity, processes, threads, attempts = 200, 3, 3, 120
    gateways = [RedisBuckets(redis_url, lease_max=10, lease_seconds=0.05) for _ in range(processes)]
    allowed = [0] * (processes * threads)
    start = threading.Barrier(processes * threads)

    def client(slot: int, gateway: RedisBuckets) -> None:
        start.wait()
        for _ in range(attempts):
            allowed[slot] += gateway.take([(key, capacity)])[0].allowed
            time.sleep(0.001)  # leases lapse and go back while others ask

    began = time.monotonic()
    workers = [threading.Thread(target=client, args=(slot, gateways[slot % processes])) for slot in range(len(allowed))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    refilled = math.ceil((time.monotonic() - began) * capacity / WINDOW)

    assert capacity - processes * 10 <= sum(allowed) <= capacity + refilled


def test_a_lapsed_lease_hands_its_unused_tokens_back_to_the_others(redis_url, key):
    first = RedisBuckets(redis_url, lease_max=10, lease_seconds=0.2)
    second = RedisBuckets(redis_url, lease_max=10, lease_seconds=0.2)
    assert first.take([(key, 60)])[0].allowed  # first leases 10: keeps 9 unspent

    before = sum(second.take([(key, 60)])[0].allowed for _ in range(60))
    time.sleep(0.25)
    assert first.take([(key, 60)])[0].allowed  # its lease has lapsed: this call hands back 9 and leases 2
    after = sum(second.take([(key, 60)])[0].allowed for _ in range(20))

    assert 50 <= before <= 51  # 60 less first's lease of 10 (a token refills each second)
    assert 7 <= after <= 8  # the 9 handed back less first's new lease of 2
