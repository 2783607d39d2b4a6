"""Which entry of X-Forwarded-For and X-Forwarded-Proto the gateway believes: the one of its NUM_PROXIES-th proxy."""

import pytest
from django.test import RequestFactory

from gateway.proxy import client_ip, forwarded_proto

PEER = "192.0.2.1"  # REMOTE_ADDR: the nearest proxy, or the client itself


def _request(**headers: str):
    return RequestFactory().get("/api/loan/1", REMOTE_ADDR=PEER, **headers)


@pytest.mark.parametrize(
    ("proxies", "sent", "address"),
    [
        (0, "203.0.113.5", PEER),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),
        (1, "", PEER),
        (2, "6.6.6.6, 203.0.113.5, 10.0.0.1", "203.0.113.5"),
        (2, "10.0.0.1", PEER),
    ],
    ids=["no-proxy", "one", "one-after-a-spoof", "one-without-header", "two", "two-short"],
)
def test_client_ip_is_the_entry_of_the_farthest_trusted_proxy_else_the_peer(settings, proxies, sent, address):
    settings.NUM_PROXIES = proxies

    assert client_ip(_request(HTTP_X_FORWARDED_FOR=sent)) == address


@pytest.mark.parametrize(
    ("proxies", "sent", "scheme"),
    [
        (0, "https", "http"),
        (1, "https", "https"),
        (1, "http, HTTPS", "https"),
        (1, "ftp", "http"),
        (1, "", "http"),
        (2, "http, https, http", "https"),
        (2, "https", "https"),  # a proxy that sets the header rather than appending to it
        (2, "javascript", "http"),
    ],
    ids=["no-proxy", "one", "one-after-a-spoof", "not-a-scheme", "one-without-header", "two", "two-short", "junk"],
)
def test_forwarded_proto_is_the_trusted_proxys_else_the_first_when_short_else_ours(settings, proxies, sent, scheme):
    settings.NUM_PROXIES = proxies

    assert forwarded_proto(_request(HTTP_X_FORWARDED_PROTO=sent)) == scheme
