"""The gateway's memory of exchanged API keys: how long a grant and a refusal are remembered, and its bound."""

from common.tokens import Claims
from gateway.api_keys import EXPIRY_MARGIN, Grant, Grants


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def grant(expires_at: float) -> Grant:
    claims = Claims(7, "agent", True, "access", "j", int(expires_at), raw={})
    return Grant("token", claims, key_id=3, name="partner", rate_limit=60)


def test_a_grant_is_remembered_for_the_cache_time():
    clock = Clock()
    grants = Grants(capacity=10, ttl=30, refused_ttl=5, clock=clock)
    grants.put("k", grant(clock.now + 300))

    clock.now += 29.9
    assert grants.get("k") == (True, grant(clock.now - 29.9 + 300))
    clock.now += 0.2
    assert grants.get("k") == (False, None)  # lapsed: the next request exchanges the key again


def test_a_grant_never_outlives_its_token_less_the_margin():
    clock = Clock()
    grants = Grants(capacity=10, ttl=30, refused_ttl=5, clock=clock)
    grants.put("k", grant(clock.now + EXPIRY_MARGIN + 10))

    clock.now += 10.1
    assert grants.get("k") == (False, None)


def test_a_refusal_is_remembered_for_its_own_shorter_time():
    clock = Clock()
    grants = Grants(capacity=10, ttl=30, refused_ttl=5, clock=clock)
    grants.put("bad", None)

    assert grants.get("bad") == (True, None)
    clock.now += 5.1
    assert grants.get("bad") == (False, None)


def test_the_least_recently_used_is_forgotten_beyond_the_capacity():
    clock = Clock()
    grants = Grants(capacity=2, ttl=30, refused_ttl=5, clock=clock)
    grants.put("a", grant(clock.now + 300))
    grants.put("b", grant(clock.now + 300))
    grants.get("a")
    grants.put("c", grant(clock.now + 300))

    assert [grants.get(key)[0] for key in ("a", "b", "c")] == [True, False, True]
