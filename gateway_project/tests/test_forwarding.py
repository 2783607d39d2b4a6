"""Faithful in both directions: hop-by-hop headers dropped, everything else of request and reply kept as sent."""

import http.client
import json
from urllib.parse import urlsplit

from tests.conftest import bearer


def _sent_upstream(reply) -> dict[str, str]:
    return {name.lower(): value for name, value in reply.json["data"]["headers"].items()}


def test_headers_named_in_the_connection_header_are_not_forwarded(gateway, stubs):
    # urllib always sends its own Connection header, so this one goes out through http.client
    address = urlsplit(gateway.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    headers = {**bearer(), "Connection": "X-Secret-Hop, keep-alive", "X-Secret-Hop": "for the gateway", "X-Kept": "1"}
    try:
        connection.request("GET", "/api/user/profile", headers=headers)
        response = connection.getresponse()
        sent = {name.lower() for name in json.loads(response.read())["data"]["headers"]}
    finally:
        connection.close()

    assert response.status == 200
    assert "x-secret-hop" not in sent
    assert "x-kept" in sent


def test_hop_by_hop_headers_of_a_reply_are_not_passed_to_the_client(gateway, stubs):
    reply = gateway.request("GET", "/api/loan/hop/1", headers=bearer())

    names = {name.lower() for name, _ in reply.header_list}
    assert reply.status == 200
    assert not names & {"x-hop-custom", "keep-alive", "proxy-authenticate", "upgrade", "trailer"}
    assert reply.headers["X-Kept"] == "yes"


def test_a_reply_without_content_type_gains_none(gateway, stubs):
    reply = gateway.request("GET", "/api/loan/raw/1", headers=bearer())

    assert reply.status == 200
    assert reply.body == b"plain"
    assert reply.all("Content-Type") == []


def test_requests_reuse_the_kept_alive_connection_to_each_upstream_instance(gateway, stubs):
    # one kept-alive client connection: one gateway worker, which keeps its connection to each instance open
    address = urlsplit(gateway.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    connections_seen: dict[str, set[int]] = {}
    try:
        for _ in range(6):
            connection.request("GET", "/api/user/profile", headers=bearer())
            response = connection.getresponse()
            assert response.status == 200
            peer_port = json.loads(response.read())["data"]["peer_port"]
            connections_seen.setdefault(response.getheader("X-Upstream-Port"), set()).add(peer_port)
    finally:
        connection.close()

    assert len(connections_seen) == 2  # round-robin over the user service's two instances
    assert all(len(peer_ports) == 1 for peer_ports in connections_seen.values()), connections_seen


def test_a_reply_reaches_the_client_with_its_length_not_rechunked(gateway, stubs):
    reply = gateway.request("GET", "/api/user/profile", headers=bearer())

    assert reply.status == 200
    assert reply.all("Transfer-Encoding") == []
    assert reply.all("Content-Length") == [str(len(reply.body))]


def test_a_chunked_reply_reaches_the_client_whole_with_its_length(gateway, stubs):
    reply = gateway.request("GET", "/api/loan/chunked/1", headers=bearer())

    assert reply.status == 200
    assert reply.body == b'{"parts": "two"}'
    assert reply.all("Transfer-Encoding") == []
    assert reply.all("Content-Length") == ["16"]


def test_repeated_reply_headers_all_reach_the_client(gateway, stubs):
    reply = gateway.request("GET", "/api/user/raw/1", headers=bearer())

    assert reply.all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]


def test_without_trusted_proxies_x_forwarded_proto_is_the_gateways_own_scheme(gateway, stubs):
    reply = gateway.request("GET", "/api/user/profile", headers={**bearer(), "X-Forwarded-Proto": "https"})

    assert _sent_upstream(reply)["x-forwarded-proto"] == "http"


def test_an_upstreams_own_429_keeps_its_rate_limit_headers(gateway, stubs):
    # given: user_service's throttle refuses (the stub's /throttled/); the gateway's own buckets are far from empty
    reply = gateway.request("POST", "/api/user/throttled/login", body=b"{}", headers=bearer())

    limits = {
        name: reply.all(name) for name in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    }
    assert reply.status == 429
    assert reply.json["error"]["code"] == "rate_limited"
    assert limits == {
        "Retry-After": ["42"],
        "RateLimit-Limit": ["10"],
        "RateLimit-Remaining": ["0"],
        "RateLimit-Reset": ["42"],
    }


def test_other_upstream_replies_carry_the_gateways_rate_limit_headers(gateway, stubs):
    reply = gateway.request("GET", "/api/user/profile", headers=bearer())

    assert reply.status == 200
    assert reply.headers["RateLimit-Limit"] == "100000"  # the test gateway's per-IP and per-user limit
    assert int(reply.headers["RateLimit-Remaining"]) > 0
    assert "Retry-After" not in reply.headers
