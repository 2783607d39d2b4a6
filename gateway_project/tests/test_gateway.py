"""The gateway as a real process in front of stand-in upstreams: forwarding and edge checks."""

import base64
import hashlib
import hmac
import json
import socket
import time

import jwt
import pytest

from common.testing import test_keys
from tests.conftest import bearer


def test_each_prefix_reaches_its_service_with_path_and_query_intact(gateway, stubs):
    for prefix, name in (
        ("/api/user/profile", "user"),
        ("/api/loan/7/schedule", "loan"),
        ("/api/notifications/", "notification"),
    ):
        reply = gateway.request("GET", f"{prefix}?page=2&x=%20y", headers=bearer())

        assert reply.status == 200, reply.body
        assert reply.json["data"]["path"] == f"{prefix}?page=2&x=%20y"
        assert reply.headers["X-Upstream-Port"] in {str(stubs[n].port) for n in stubs if n.startswith(name)}


@pytest.mark.parametrize(
    "path",
    ["/api/user/list-users", "/api/loan/list-loans-admin-agent", "/api/loan/7/transactions", "/api/notifications/"],
)
def test_a_list_cursor_reaches_the_service_as_it_was_sent(gateway, path):
    # A next_cursor is opaque (URL-safe base64, a colon, its signature): the gateway passes it on untouched.
    cursor = "WyIyMDI2LTEyLTAzVDEyOjAwOjAwLjEyMzQ1NiswMDowMCIsNDJd:3dPq_-x9Zk2Yk0lYb9hVJr1oJm0E8GkQmVd0p5r8a6s"

    reply = gateway.request("GET", f"{path}?cursor={cursor}&page_size=50", headers=bearer())

    assert reply.status == 200, reply.body
    assert reply.json["data"]["path"] == f"{path}?cursor={cursor}&page_size=50"


def test_unknown_paths_are_404_in_the_envelope(gateway):
    for path in ("/api/other/thing", "/nothing", "/api/userx"):
        reply = gateway.request("GET", path, headers=bearer())

        assert reply.status == 404
        assert reply.json["error"]["code"] == "not_found"
        assert reply.headers["X-Correlation-ID"]


def test_method_body_and_headers_are_forwarded_faithfully(gateway, stubs):
    token = bearer()
    headers = {
        **token,
        "Content-Type": "application/json",
        "X-Correlation-ID": "abc-123",
        "X-User-Id": "1",
        "X-User-Role": "admin",
        "X-Custom": "kept",
        "Proxy-Authorization": "Basic c2VjcmV0",
        "X-Service-Key": "guess",
    }

    reply = gateway.request("PUT", "/api/loan/edit-loan/3", body=b'{"months": 12}', headers=headers)

    seen = reply.json["data"]
    sent = {name.lower(): value for name, value in seen["headers"].items()}
    assert (seen["method"], seen["body"]) == ("PUT", '{"months": 12}')
    assert sent["authorization"] == token["Authorization"]
    assert sent["x-correlation-id"] == "abc-123"
    assert sent["x-custom"] == "kept"
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert "x-user-id" not in sent
    assert "x-user-role" not in sent
    assert "proxy-authorization" not in sent  # hop-by-hop
    assert "x-service-key" not in sent
    assert reply.headers["X-Correlation-ID"] == "abc-123"


INTERNAL_DISGUISES = {
    "plain": "/internal/users/1",
    "plain-trailing-slash": "/internal/",
    "under-a-prefix-trailing-slash": "/api/user/internal/",
    "encoded-slashes": "/api/user/..%2F..%2Finternal/users/1",
    "lowercase-encoded-slashes": "/api/user/..%2f..%2finternal/users/1",
    "encoded-slash-after-prefix": "/api/user%2Finternal/users/1",
    "double-encoded-slash": "/api/user%252Finternal/users/1",
    "double-slash": "/api/loan//internal/users/1",
    "encoded-dots": "/api/user/%2e%2e/internal/users/1",
    "double-encoded-dots": "/api/user/%252e%252e/internal/users/1",
    "trailing-blank": "/api/user/internal%20/users/1",
    "capitalised": "/api/user/Internal/users/1",
    "upper-case-prefix": "/API/user/internal/users/1",
    "path-parameter": "/api/user/internal;x=1/users/1",
    "empty-path-parameter": "/api/loan/internal;/users/1",
    "dot-dot-path-parameter": "/api/user/..;/internal/users/1",
}


@pytest.mark.parametrize("path", INTERNAL_DISGUISES.values(), ids=INTERNAL_DISGUISES.keys())
def test_internal_is_never_forwarded(gateway, stubs, path):
    reply = gateway.request("GET", path, headers=bearer())

    assert reply.status == 404
    assert all(not stub.requests() for stub in stubs.values())


def _forged(**overrides):
    now = int(time.time())
    claims = {
        "user_id": 5,
        "role": "admin",
        "is_approved": True,
        "token_type": "access",
        "jti": "x",
        "iat": now,
        "exp": now + 300,
        "iss": "lms-user-service",
        "aud": "lms",
        **overrides,
    }
    return claims


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.token",
        f"Bearer {test_keys.mint(user_id=5, role='customer', lifetime=-10)}",
        f"Bearer {test_keys.mint(user_id=5, role='customer', token_type='refresh')}",
        f"Bearer {test_keys.mint(user_id=5, role='customer', audience='other')}",
        f"Bearer {test_keys.mint(user_id=5, role='customer', issuer='someone-else')}",
        "Bearer " + jwt.encode(_forged(), key=None, algorithm="none"),
        "Bearer x.y.z",
    ],
    ids=["missing", "empty", "basic", "garbage", "expired", "refresh", "audience", "issuer", "alg-none", "junk"],
)
def test_bad_tokens_are_401_before_any_upstream(gateway, stubs, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    reply = gateway.request("GET", "/api/loan/list-loans-customer", headers=headers)

    assert reply.status == 401
    assert reply.json["success"] is False
    assert not stubs["loan"].requests()


def test_hs256_signed_with_the_public_key_is_401(gateway, stubs):
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": test_keys.kid}).encode())
    payload = b64(json.dumps(_forged()).encode())
    secret = test_keys.public_path.read_bytes()
    signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())

    reply = gateway.request("GET", "/api/loan/1", headers={"Authorization": f"Bearer {header}.{payload}.{signature}"})

    assert reply.status == 401
    assert not stubs["loan"].requests()


def test_a_token_signed_by_another_key_is_401(gateway, stubs):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_forged(), other, algorithm="RS256", headers={"kid": test_keys.kid})

    assert gateway.request("GET", "/api/loan/1", headers={"Authorization": f"Bearer {token}"}).status == 401
    assert not stubs["loan"].requests()


def test_public_routes_need_no_token(gateway, stubs):
    assert (
        gateway.request("POST", "/api/user/signup", body=b"{}", headers={"Content-Type": "application/json"}).status
        == 200
    )
    assert gateway.request("GET", "/api/user/.well-known/jwks.json").status == 200
    assert gateway.request("GET", "/health").status == 200


def test_a_body_over_the_limit_is_413_without_calling_the_service(gateway, stubs):
    reply = gateway.request(
        "POST", "/api/loan/customer-loan", body=b"x" * 5000, headers={**bearer(), "Content-Type": "application/json"}
    )

    assert reply.status == 413
    assert reply.json["error"]["code"] == "payload_too_large"
    assert not stubs["loan"].requests()


def test_login_attempts_are_limited_per_ip_and_email_with_headers(gateway, stubs):
    body = json.dumps({"email": "Limit@Example.com", "password": "x"}).encode()
    headers = {"Content-Type": "application/json"}

    replies = [gateway.request("POST", "/api/user/login", body=body, headers=headers) for _ in range(4)]
    other_email = gateway.request("POST", "/api/user/login", body=b'{"email": "else@example.com"}', headers=headers)

    assert [r.status for r in replies] == [200, 200, 200, 429]
    refused = replies[-1]
    assert refused.json["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) >= 1
    logins = [r for name in ("user", "user_b") for r in stubs[name].requests() if r["path"] == "/api/user/login"]
    assert len(logins) == 4  # three logins and the other email; the refused one never went
    assert other_email.status == 200


def test_the_access_log_names_the_upstream_and_the_user(gateway, stubs):
    gateway.request("GET", "/api/loan/77", headers={**bearer(user_id=77), "X-Correlation-ID": "log-check-1"})
    time.sleep(0.2)

    lines = [json.loads(line) for line in gateway.log_path.read_text().splitlines() if line.startswith("{")]
    [entry] = [line for line in lines if line.get("correlation_id") == "log-check-1" and line.get("path")]
    assert (entry["method"], entry["status"], entry["user_id"]) == ("GET", 200, 77)
    assert entry["upstream"].startswith("loan ")
    assert entry["duration_ms"] >= 0


def test_the_access_log_of_a_refused_request_says_no_upstream_was_called(gateway, stubs):
    gateway.request("GET", "/api/loan/77", headers={"X-Correlation-ID": "log-check-401"})
    time.sleep(0.2)

    lines = [json.loads(line) for line in gateway.log_path.read_text().splitlines() if line.startswith("{")]
    [entry] = [line for line in lines if line.get("correlation_id") == "log-check-401" and line.get("path")]
    assert (entry["status"], entry["upstream"], entry["user_id"]) == (401, None, None)


def _chunked(body: bytes):
    yield from (body[i : i + 500] for i in range(0, len(body), 500))


def test_a_chunked_body_is_forwarded_whole(gateway, stubs):
    body = b'{"months": 12, "note": "' + b"n" * 900 + b'"}'
    headers = {**bearer(), "Content-Type": "application/json", "Transfer-Encoding": "chunked"}

    reply = gateway.request("POST", "/api/loan/quote", body=_chunked(body), headers=headers)

    assert reply.status == 200
    assert reply.json["data"]["body"] == body.decode()


def test_a_chunked_body_over_the_limit_is_413_without_calling_the_service(gateway, stubs):
    chunks = b"".join(b"%x\r\n%s\r\n" % (500, b"x" * 500) for _ in range(10)) + b"0\r\n\r\n"
    head = f"POST /api/loan/quote HTTP/1.1\r\nHost: gw\r\nAuthorization: {bearer()['Authorization']}\r\n"
    head += "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    port = int(gateway.url.rsplit(":", 1)[1])

    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(head.encode() + chunks)  # all of it at once: no write after the gateway has answered
        answer = connection.makefile("rb").read()

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"payload_too_large"' in answer
    assert not stubs["loan"].requests()
