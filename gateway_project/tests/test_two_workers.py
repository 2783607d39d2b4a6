"""Two gateway worker processes, as in production: rate-limit buckets shared through Redis, metrics added up."""

import json
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import bearer, gateway_running, redis_or_skip, stubs_running


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    url = redis_or_skip()
    folder = tmp_path_factory.mktemp("two-workers")
    options = {
        "REDIS_URL": url,
        "RATE_LIMIT_LOGIN": "4",
        "GATEWAY_HEALTH_INTERVAL": "0.3",
        "NUM_PROXIES": "1",  # as behind a load balancer: its X-Forwarded-For names the client
    }
    with stubs_running(folder) as stubs, gateway_running(folder, stubs, workers=2, **options) as started:
        yield started


def test_login_limit_holds_across_worker_processes(two_workers):
    body = json.dumps({"email": f"{uuid.uuid4().hex}@example.com", "password": "x"}).encode()
    headers = {"Content-Type": "application/json", "Connection": "close"}  # each attempt may land on either worker

    statuses = [two_workers.request("POST", "/api/user/login", body=body, headers=headers).status for _ in range(8)]

    assert statuses == [200] * 4 + [429] * 4


def _answered(text: str, route: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "gateway_requests"
        for sample in family.samples
        if sample.name == "gateway_requests_total" and sample.labels["route"] == route
    )


def test_metrics_add_up_every_worker_whichever_answers_the_scrape(two_workers):
    headers = {**bearer(), "Connection": "close"}
    for _ in range(6):
        assert two_workers.request("GET", "/api/loan/31", headers=headers).status == 200

    scrapes = [two_workers.request("GET", "/metrics", headers={"Connection": "close"}) for _ in range(4)]

    assert [_answered(scrape.body.decode(), "/api/loan/{id}") for scrape in scrapes] == [6.0] * 4


def _up(text: str, upstream: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_upstream_up" and sample.labels["upstream"] == upstream:
                return sample.value
    return None


def _wait_for_up_gauge(gateway, upstream: str, value: float) -> None:
    deadline = time.monotonic() + 8
    while _up(gateway.request("GET", "/metrics").body.decode(), upstream) != value:
        assert time.monotonic() < deadline, f"the background checks never reported {upstream} as {value}"
        time.sleep(0.2)


def test_background_checks_mark_a_stopped_instance_down_and_up_again(two_workers):
    notification = two_workers.stubs["notification"]
    _wait_for_up_gauge(two_workers, "notification", 1.0)
    notification.stop()
    try:
        _wait_for_up_gauge(two_workers, "notification", 0.0)  # no request to it, no /health: the checker saw it
        refused = two_workers.request("GET", "/api/notifications/", headers=bearer())
    finally:
        notification.start()
    _wait_for_up_gauge(two_workers, "notification", 1.0)

    assert refused.status == 503
    assert refused.json["error"]["code"] == "service_unavailable"
    deadline = time.monotonic() + 5  # the gauge is one worker's view; the other's checker may be a round behind
    while two_workers.request("GET", "/api/notifications/", headers=bearer()).status != 200:
        assert time.monotonic() < deadline, "the restarted instance never took requests again"
        time.sleep(0.1)


def test_metrics_are_only_for_clients_on_the_internal_network(two_workers):
    outside = two_workers.request("GET", "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    inside = two_workers.request("GET", "/metrics", headers={"X-Forwarded-For": "10.1.2.3"})

    assert outside.status == 404
    assert outside.json["error"]["code"] == "not_found"
    assert inside.status == 200
