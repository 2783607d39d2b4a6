"""X-API-Key at the gateway: exchanged at user_service for a token that is forwarded in its place, remembered a
short while (so a revoked key stops within that time), with the key's own rate limit and a metric per key."""

import time

import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.keys import load_public_key
from common.testing import test_keys
from tests.conftest import bearer, gateway_running, stubs_running

PARTNER = "lms_0123456789ab_partner-secret"
AGENCY = "lms_ba9876543210_agency-secret"
GRANTS = {
    PARTNER: {"id": 7, "name": "broker-site", "rate_limit": 3, "scope": "loans:read", "user_id": 21, "role": "agent"},
    AGENCY: {"id": 8, "name": "agency", "rate_limit": 100, "scope": "loans:read", "user_id": 22, "role": "agent"},
}
CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    with stubs_running(folder) as stubs:
        stubs["user"].accept_keys(GRANTS)
        options = {"GATEWAY_API_KEY_CACHE_SECONDS": str(CACHE_SECONDS), "GATEWAY_API_KEY_REFUSED_SECONDS": "0.5"}
        with gateway_running(folder, stubs, **options) as gateway:
            yield gateway


@pytest.fixture
def gateway(keyed):
    keyed.stubs["user"].accept_keys(GRANTS)
    for stub in keyed.stubs.values():
        stub.forget()
    time.sleep(CACHE_SECONDS)  # what an earlier test's requests left in the gateway's memory has lapsed
    return keyed


def exchanges(gateway) -> int:
    return sum(1 for r in gateway.stubs["user"].requests() if r["path"] == "/internal/api-keys/exchange")


def test_a_key_is_exchanged_once_and_its_token_forwarded_in_its_place(gateway):
    replies = [gateway.request("GET", "/api/loan/42", headers={"X-API-Key": AGENCY}) for _ in range(3)]

    assert [reply.status for reply in replies] == [200] * 3
    seen = [r["headers"] for r in gateway.stubs["loan"].requests()]
    assert all("X-Api-Key" not in headers and "X-API-Key" not in headers for headers in seen)  # no service sees a key
    token = seen[0]["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(
        token, load_public_key(test_keys.public_path.read_bytes()), algorithms=["RS256"], audience="lms"
    )
    assert (claims["user_id"], claims["api_key_id"], claims["scope"]) == (22, 8, "loans:read")
    assert exchanges(gateway) == 1  # remembered: one exchange for the three requests


def test_a_revoked_key_stops_working_within_the_cache_time(gateway):
    assert gateway.request("GET", "/api/loan/42", headers={"X-API-Key": AGENCY}).status == 200
    gateway.stubs["user"].accept_keys({PARTNER: GRANTS[PARTNER]})  # user_service revokes AGENCY

    revoked_at = time.monotonic()
    while (reply := gateway.request("GET", "/api/loan/42", headers={"X-API-Key": AGENCY})).status == 200:
        assert time.monotonic() - revoked_at < CACHE_SECONDS + 0.5, "the revoked key still works past the cache time"
        time.sleep(0.05)

    assert reply.status == 401
    assert reply.json["error"]["code"] == "invalid_api_key"
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_unknown_key_is_401_and_repeats_are_refused_from_memory(gateway):
    replies = [gateway.request("GET", "/api/loan/42", headers={"X-API-Key": "lms_nope_nope"}) for _ in range(5)]

    assert {reply.status for reply in replies} == {401}
    assert {reply.json["error"]["code"] for reply in replies} == {"invalid_api_key"}
    assert exchanges(gateway) == 1
    assert not gateway.stubs["loan"].requests()


def test_a_key_and_a_bearer_token_together_are_refused(gateway):
    reply = gateway.request("GET", "/api/loan/42", headers={"X-API-Key": AGENCY, **bearer()})

    assert reply.status == 400
    assert reply.json["error"]["code"] == "validation_error"
    assert not gateway.stubs["loan"].requests()


def test_each_key_has_its_own_rate_limit_bucket(gateway):
    partner = [gateway.request("GET", "/api/loan/42", headers={"X-API-Key": PARTNER}) for _ in range(4)]
    agency = gateway.request("GET", "/api/loan/42", headers={"X-API-Key": AGENCY})

    assert [reply.status for reply in partner] == [200, 200, 200, 429]
    assert partner[0].headers["RateLimit-Limit"] == "3"
    assert partner[3].json["error"]["code"] == "rate_limited"
    assert agency.status == 200


def test_key_use_is_counted_per_key_name(gateway):
    gateway.request("GET", "/api/loan/42", headers={"X-API-Key": AGENCY})

    text = gateway.request("GET", "/metrics").body.decode()
    counted = {
        (sample.labels["key"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_api_key_requests_total"
    }
    assert counted.get(("agency", "200"), 0) >= 1


def test_user_service_down_makes_a_key_a_fast_503_not_a_401(gateway):
    gateway.stubs["user"].stop()
    try:
        reply = gateway.request("GET", "/api/loan/42", headers={"X-API-Key": "lms_000000000000_unseen"})
    finally:
        gateway.stubs["user"].start()

    assert reply.status == 503
    assert reply.json["error"]["code"] == "service_unavailable"
    assert reply.elapsed < 2
