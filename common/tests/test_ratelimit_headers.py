"""Every 429 says the limit, that nothing remains, when it resets and when to retry (API.md)."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_throttled_request_gets_the_ratelimit_headers(api):
    for _ in range(2):
        assert api.get("/throttled").status_code == 200

    refused = api.get("/throttled")

    assert refused.status_code == 429
    assert refused["RateLimit-Limit"] == "2"
    assert refused["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused["Retry-After"]) <= int(refused["RateLimit-Reset"]) <= 60


def test_the_limit_is_that_of_the_throttle_that_refused(api):
    statuses = [api.get("/two-throttles").status_code for _ in range(3)]
    refused = api.get("/two-throttles")

    assert statuses == [200, 200, 429]
    assert refused["RateLimit-Limit"] == "2"  # the tight scoped throttle, not the roomy 5/min one


def test_a_429_a_view_raises_itself_still_says_when_to_retry(api):
    response = api.get("/raise/throttled")

    assert response["Retry-After"] == "4"
    assert response["RateLimit-Remaining"] == "0"
    assert response["RateLimit-Reset"] == "4"
