"""The login limit's buckets stay small whatever email a client sends (issue #14)."""

import json

from gateway import ratelimit
from gateway.ratelimit import LocalBuckets


def _login(gateway, email: str):
    body = json.dumps({"email": email, "password": "x"}).encode()
    return gateway.request("POST", "/api/user/login", body=body, headers={"Content-Type": "application/json"})


def test_a_login_email_over_254_characters_is_refused_in_the_envelope_before_any_bucket(gateway, stubs):
    too_long = "a" * 243 + "@example.com"  # 255 characters

    replies = [_login(gateway, too_long) for _ in range(5)]  # more than the login limit (3 in these tests)

    assert [reply.status for reply in replies] == [400] * 5  # never counted, never 429
    error = replies[0].json["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == ["email"]
    assert "RateLimit-Limit" not in replies[0].headers
    assert not [r for name in ("user", "user_b") for r in stubs[name].requests() if r["path"] == "/api/user/login"]


def test_a_login_email_of_254_characters_is_forwarded(gateway, stubs):
    longest = "b" * 242 + "@example.com"  # 254 characters

    assert _login(gateway, longest).status == 200


def test_a_login_bucket_key_is_a_hash_of_the_normalised_email(settings):
    settings.REDIS_URL = ""
    ratelimit.buckets.cache_clear()
    try:
        long_email = "c" * 240 + "@example.com"
        ratelimit.check(client_ip="192.0.2.7", user_id=None, login_email=f"  {long_email.upper()} ")
        _, verdict = ratelimit.check(client_ip="192.0.2.7", user_id=None, login_email=long_email)
        keys = list(ratelimit.buckets()._buckets)
    finally:
        ratelimit.buckets.cache_clear()

    login_keys = [key for key in keys if key.startswith("login:")]
    assert len(login_keys) == 1  # the same bucket for both spellings
    assert long_email not in login_keys[0]
    assert len(login_keys[0]) == len("login:192.0.2.7:") + 64
    assert verdict.remaining == settings.RATE_LIMIT_LOGIN - 2


def test_a_login_email_with_a_lone_surrogate_is_counted_not_a_crash():
    assert len(ratelimit.email_key("\ud800@example.com")) == 64


def test_idle_buckets_are_forgotten_after_a_window_however_few_there_are():
    now = [1000.0]
    buckets = LocalBuckets(clock=lambda: now[0])
    buckets.take([("idle", 3)])
    now[0] += 30
    buckets.take([("recent", 3)])
    now[0] += ratelimit.WINDOW - 29  # "idle" idle a whole window (full again), "recent" not

    buckets.take([("new", 3)])

    assert sorted(buckets._buckets) == ["new", "recent"]
