"""Edge token checks beyond the signature: the JWKS cool-down, and the memory of verified tokens."""

import time
import uuid

import jwt

from common.testing import test_keys
from common.tokens import Claims
from gateway.edge_auth import VerifiedTokens
from tests.conftest import bearer


def _with_unknown_kid() -> str:
    now = int(time.time())
    claims = {"user_id": 5, "role": "customer", "is_approved": True, "token_type": "access", "jti": "j"}
    claims |= {"iat": now, "exp": now + 300, "iss": "lms-user-service", "aud": "lms"}
    return jwt.encode(claims, test_keys.private_key, algorithm="RS256", headers={"kid": uuid.uuid4().hex})


def _jwks_fetches(stubs) -> int:
    return sum(1 for r in stubs["user"].requests() if r["path"].startswith("/api/user/.well-known/jwks.json"))


def test_a_flood_of_unknown_kids_fetches_the_key_set_at_most_once_per_cool_down(gateway, stubs):
    gateway.request("GET", "/api/loan/1", headers=bearer())  # the known key is loaded by now
    stubs["user"].forget()
    stubs["loan"].forget()

    replies = [
        gateway.request("GET", "/api/loan/1", headers={"Authorization": f"Bearer {_with_unknown_kid()}"})
        for _ in range(16)
    ]

    assert {r.status for r in replies} == {401}
    assert _jwks_fetches(stubs) <= 1  # the cool-down is 30 s in these tests
    assert not stubs["loan"].requests()


def test_a_remembered_token_is_still_refused_once_it_expires(gateway, stubs):
    token = test_keys.mint(user_id=5, role="customer", lifetime=2)
    headers = {"Authorization": f"Bearer {token}"}

    first = gateway.request("GET", "/api/loan/1", headers=headers)
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time() + 0.1))
    second = gateway.request("GET", "/api/loan/1", headers=headers)

    assert (first.status, second.status) == (200, 401)
    assert len(stubs["loan"].requests()) == 1


def _claims(expires_at: int) -> Claims:
    return Claims(
        user_id=1, role="customer", is_approved=True, token_type="access", jti="j", expires_at=expires_at, raw={}
    )


def test_verified_tokens_are_forgotten_at_expiry_or_after_the_ttl():
    now = [1000.0]
    memory = VerifiedTokens(capacity=10, ttl=60, clock=lambda: now[0])
    memory.put("short", _claims(expires_at=1010))
    memory.put("long", _claims(expires_at=5000))

    now[0] = 1009.0
    assert memory.get("short") is not None
    now[0] = 1010.0
    assert memory.get("short") is None  # its exp has come
    assert memory.get("long") is not None
    now[0] = 1060.0
    assert memory.get("long") is None  # remembered at most ttl seconds


def test_verified_tokens_keep_at_most_their_capacity_dropping_the_least_recent():
    memory = VerifiedTokens(capacity=2, ttl=60, clock=lambda: 0.0)
    memory.put("a", _claims(100))
    memory.put("b", _claims(100))
    memory.get("a")  # a is now the most recent

    memory.put("c", _claims(100))

    assert [memory.get(key) is not None for key in ("a", "b", "c")] == [True, False, True]


def test_verified_tokens_with_zero_capacity_remember_nothing():
    memory = VerifiedTokens(capacity=0, ttl=60, clock=lambda: 0.0)
    memory.put("a", _claims(100))

    assert memory.get("a") is None
