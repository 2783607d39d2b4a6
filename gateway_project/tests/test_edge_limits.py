"""Behind a trusted load balancer (NUM_PROXIES=1): its X-Forwarded-* headers, and the per-IP and per-user limits."""

import itertools
import random

import pytest

from tests.conftest import bearer, gateway_running, stubs_running

PER_IP, PER_USER = 4, 3
_addresses = itertools.count(1)


def _client_ip() -> str:
    """A fresh client address for each test, so no test spends another's bucket."""
    return f"198.51.100.{next(_addresses)}"


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("behind-proxy")
    limits = {"NUM_PROXIES": "1", "RATE_LIMIT_PER_IP": str(PER_IP), "RATE_LIMIT_PER_USER": str(PER_USER)}
    with stubs_running(folder) as stubs, gateway_running(folder, stubs, **limits) as started:
        yield started


def test_the_trusted_proxys_x_forwarded_proto_is_kept(behind_proxy):
    headers = {**bearer(), "X-Forwarded-For": _client_ip(), "X-Forwarded-Proto": "https"}

    reply = behind_proxy.request("GET", "/api/user/profile", headers=headers)

    sent = {name.lower(): value for name, value in reply.json["data"]["headers"].items()}
    assert sent["x-forwarded-proto"] == "https"
    assert sent["x-forwarded-for"] == f"{headers['X-Forwarded-For']}, 127.0.0.1"


def _assert_limited(reply, limit: int) -> None:
    assert reply.status == 429
    assert reply.json["error"]["code"] == "rate_limited"
    assert int(reply.headers["Retry-After"]) >= 1
    assert reply.headers["RateLimit-Limit"] == str(limit)
    assert reply.headers["RateLimit-Remaining"] == "0"
    assert int(reply.headers["RateLimit-Reset"]) >= 1


def test_the_per_ip_limit_answers_429_with_its_headers(behind_proxy):
    user = behind_proxy.stubs["user"]
    user.forget()
    headers = {"X-Forwarded-For": _client_ip()}

    replies = [
        behind_proxy.request("GET", "/api/user/.well-known/jwks.json", headers=headers) for _ in range(PER_IP + 1)
    ]

    assert [r.status for r in replies] == [200] * PER_IP + [429]
    assert [r.headers["RateLimit-Remaining"] for r in replies[:PER_IP]] == ["3", "2", "1", "0"]
    _assert_limited(replies[-1], PER_IP)
    assert len(user.requests()) == PER_IP  # the refused one never went


def test_the_per_user_limit_answers_429_with_its_headers_whatever_the_address(behind_proxy):
    loan = behind_proxy.stubs["loan"]
    loan.forget()
    token = bearer(user_id=random.randint(10_000, 10**9))

    replies = [
        behind_proxy.request("GET", "/api/loan/1", headers={**token, "X-Forwarded-For": _client_ip()})
        for _ in range(PER_USER + 1)
    ]

    assert [r.status for r in replies] == [200] * PER_USER + [429]
    _assert_limited(replies[-1], PER_USER)
    assert len(loan.requests()) == PER_USER
