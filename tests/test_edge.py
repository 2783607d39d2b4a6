"""The gateway's edge in front of the real services: tokens, /internal/, body size, rate limits, hangs.

The gateway's own suite checks the same rules against stand-in upstreams
(gateway_project/tests); these run them through the real processes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.actors import PASSWORD, approved_agent, sign_up, unique_email
from tests.harness import wait_for


@pytest.fixture(scope="module")
def signing(system) -> dict:
    """The system's real private key and kid, to make tokens that differ from good ones in one claim only."""
    kid = system.gateway.get("/api/user/.well-known/jwks.json").json["keys"][0]["kid"]
    return {"key": (system.var / "keys" / "jwt_private.pem").read_text(), "kid": kid}


def _claims(**changes) -> dict:
    now = int(time.time())
    claims = {"user_id": 1, "role": "admin", "is_approved": True, "token_type": "access", "jti": uuid.uuid4().hex}
    claims |= {"iat": now, "exp": now + 300, "iss": "lms-user-service", "aud": "lms"}
    return claims | changes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(value: dict) -> str:
    """One JSON part of a JWT, base64url without padding."""
    return _b64(json.dumps(value).encode())


def _unsigned(claims: dict) -> str:
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims)}."


def _forged_tokens(signing: dict) -> dict[str, str]:
    key, kid = signing["key"], signing["kid"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        serialization.load_pem_private_key(key.encode(), password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return {
        "expired": jwt.encode(_claims(exp=int(time.time()) - 5), key, "RS256", headers={"kid": kid}),
        "wrong audience": jwt.encode(_claims(aud="someone-else"), key, "RS256", headers={"kid": kid}),
        "wrong issuer": jwt.encode(_claims(iss="someone-else"), key, "RS256", headers={"kid": kid}),
        "refresh as access": jwt.encode(_claims(token_type="refresh"), key, "RS256", headers={"kid": kid}),
        "another key": jwt.encode(_claims(), stranger, "RS256", headers={"kid": kid}),
        "alg none": _unsigned(_claims()),
        # HS256 with the public key as the secret: the classic key-confusion forgery.
        "hs256 key confusion": _hs256(_claims(), public_pem, kid),
        "tampered claims": _tampered(jwt.encode(_claims(role="customer"), key, "RS256", headers={"kid": kid})),
        "garbage": "not-a-token",
    }


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    signing_input = f"{_part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_part(claims)}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    return f"{header}.{_part(claims)}.{signature}"


def test_every_bad_token_is_a_401_in_the_envelope(system, signing):
    for name, token in _forged_tokens(signing).items():
        reply = system.gateway.as_token(token).get("/api/user/list-users")

        assert reply.status == 401, (name, reply.body)
        assert reply.json["success"] is False, name
    assert system.gateway.get("/api/loan/list-loans-admin-agent").status == 401  # no token at all


INTERNAL_DISGUISES = [
    "/internal/users/1",
    "/internal/users/1/",
    "/api/user/internal/users/1",
    "/api/user/../../internal/users/1",
    "/api/user/%2e%2e/%2e%2e/internal/users/1",
    "/api/user/%2Finternal/users/1",
    "/api/user/%2finternal%2fusers%2f1",
    "/api/user/%252Finternal/users/1",
    "/api/user//internal/users/1",
    "//internal/users/1",
    "/API/USER/../../INTERNAL/users/1",
    "/api/user/;/../../internal/users/1",
    "/api/loan/..%2F..%2Finternal/users/1",
]


@pytest.mark.parametrize("path", INTERNAL_DISGUISES)
def test_internal_routes_are_never_reached_through_the_gateway(system, admin, path):
    # Even with the service key and an admin token, nothing under /internal/ comes back.
    reply = admin.api.get(path, headers={"X-Service-Key": "dev-only-service-key"})

    assert reply.status in (400, 404), reply.body
    assert reply.json["success"] is False
    assert b'"email"' not in reply.body


def test_a_body_over_the_limit_is_413_and_reaches_no_service(system, admin):
    before = admin.api.get("/api/user/list-users?page_size=1").data["count"]
    email = unique_email("big")
    body = {"email": email, "password": PASSWORD, "first_name": "x" * 1_100_000, "last_name": "y", "role": "customer"}

    reply = system.gateway.post("/api/user/signup", body)

    assert reply.status == 413, reply.body[:300]
    assert reply.json["success"] is False
    assert admin.api.get("/api/user/list-users?page_size=1").data["count"] == before


def test_login_attempts_past_the_limit_get_429_with_the_rate_limit_headers(system):
    email = unique_email("guess")
    replies = [system.gateway.post("/api/user/login", {"email": email, "password": "wrong"}) for _ in range(12)]

    statuses = [reply.status for reply in replies]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    limited = replies[-1]
    assert limited.json["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "10"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) >= 1


@contextlib.contextmanager
def frozen(system, label: str):
    """`label`'s processes stopped with SIGSTOP: connections are accepted by the kernel and never answered.

    Afterwards the block waits until the gateway routes to it again, so a failure here spoils no later test.
    """
    group = system.supervisor.running[label].pid
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)
        wait_for(
            lambda: system.gateway.get("/health").status == 200,
            timeout=30,
            message=f"the gateway to see {label} up again",
        )


def test_a_hanging_service_gives_504_within_the_deadline_and_a_post_is_sent_once(system, admin):
    customer = sign_up(system.gateway, "customer")
    agent = approved_agent(system.gateway, admin)
    deadline = float(system.extra_env["GATEWAY_DEADLINE"])
    body = {"customer_id": customer.id, "principal": "40000.00", "months": 12}

    with frozen(system, "loan"):
        write = agent.api.post("/api/loan/customer-loan", body)
        read = customer.api.get("/api/loan/list-loans-customer")

    assert write.status == 504, write.body
    assert write.json["error"]["code"] == "upstream_timeout"
    assert write.elapsed < deadline + 1.5
    # By now the background health check may have marked the instance down: then it fails fast instead.
    assert read.status in (503, 504), read.body
    assert read.elapsed < deadline + 1.5
    # The POST reached loan_service before it froze: the gateway never sent it a second time.
    time.sleep(1)  # the frozen request, if loan_service processes it at all, has finished by now
    reply = customer.api.get("/api/loan/list-loans-customer")
    assert reply.status == 200, reply.body
    assert reply.data["count"] <= 1
