"""Upstreams that fail: retries only when safe, the overall deadline, and each instance's circuit breaker."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import bearer, breaker_states

COOL_DOWN = 1.0  # GATEWAY_BREAKER_RESET_SECONDS of the test gateway; it opens after 3 consecutive failures
JSON = {"Content-Type": "application/json"}


def _failing_post(gateway):
    """A POST the notification stub answers 503: never retried, so exactly one failure for its breaker."""
    return gateway.request("POST", "/api/notifications/unavailable/x", body=b"{}", headers={**bearer(), **JSON})


def _count_from_zero(gateway, stub) -> None:
    """A success resets the breaker's count of consecutive failures, whatever earlier tests left; then forget it."""
    assert gateway.request("GET", "/api/notifications/5", headers=bearer()).status == 200
    stub.forget()


def _open_the_breaker(gateway, stub) -> str:
    _count_from_zero(gateway, stub)
    for _ in range(3):
        _failing_post(gateway)
    key = f"notification {stub.url}"
    assert breaker_states(gateway)[key] == "open"
    return key


def test_a_post_is_never_retried_after_it_reached_the_service(gateway, stubs):
    post = gateway.request("POST", "/api/loan/unavailable/x", body=b"{}", headers={**bearer(), **JSON})
    gateway.request("GET", "/api/loan/1", headers=bearer())  # a success: the breaker counts consecutive failures
    get = gateway.request("GET", "/api/loan/unavailable/x", headers=bearer())

    methods = [r["method"] for r in stubs["loan"].requests() if r["path"] == "/api/loan/unavailable/x"]
    assert (post.status, get.status) == (503, 503)
    assert methods.count("POST") == 1
    assert methods.count("GET") == 3  # the first try and two retries


def test_a_hanging_upstream_gives_504_within_the_deadline(gateway, stubs):
    reply = gateway.request("GET", "/api/notifications/hang/1", headers=bearer())

    assert reply.status == 504
    assert reply.json["error"]["code"] == "upstream_timeout"
    assert reply.elapsed < 3.5


@pytest.mark.parametrize("part", ["trickle", "trickle-head"], ids=["body", "status-line"])
def test_an_upstream_that_trickles_gives_504_within_the_deadline(gateway, stubs, part):
    # given: a byte every 0.1 s, each read well inside the 1.5 s read timeout, 6 s in all
    # when
    reply = gateway.request("GET", f"/api/notifications/{part}/1", headers=bearer())

    # then: the 2.5 s deadline holds over the whole read
    assert reply.status == 504
    assert reply.json["error"]["code"] == "upstream_timeout"
    assert reply.elapsed < 3.5


def test_a_stopped_upstream_fails_fast_opens_the_breaker_and_recovers(gateway, stubs):
    loan = stubs["loan"]
    loan.stop()
    try:
        replies = [gateway.request("GET", "/api/loan/1", headers=bearer()) for _ in range(6)]
        health = gateway.request("GET", "/health")
        metrics = gateway.request("GET", "/metrics").body.decode()
    finally:
        loan.start()

    assert {r.status for r in replies} == {503}
    assert max(r.elapsed for r in replies) < 1.5
    assert health.status == 503
    assert health.json["services"]["loan"]["status"] == "down"
    assert f'gateway_breaker_state{{instance="{loan.url}",upstream="loan"}} 2.0' in metrics
    deadline = time.monotonic() + 10
    while gateway.request("GET", "/api/loan/1", headers=bearer()).status != 200:  # the trial after the cool-down
        assert time.monotonic() < deadline, "the restarted upstream never took requests again"
        time.sleep(0.2)
    assert gateway.request("GET", "/health").status == 200


def test_an_answer_that_is_not_http_is_502_and_only_reads_are_retried(gateway, stubs):
    post = gateway.request("POST", "/api/notifications/garbage/x", body=b"{}", headers={**bearer(), **JSON})
    get = gateway.request("GET", "/api/loan/garbage/x", headers=bearer())

    assert (post.status, get.status) == (502, 502)
    assert post.json["error"]["code"] == get.json["error"]["code"] == "bad_upstream_response"
    assert [r["method"] for r in stubs["notification"].requests()] == ["POST"]
    assert [r["method"] for r in stubs["loan"].requests()] == ["GET"] * 3


@pytest.mark.parametrize("path", ["unavailable", "database-down"], ids=["no-envelope", "database-unavailable"])
def test_an_instance_answering_503_opens_its_breaker(gateway, stubs, path):
    notification = stubs["notification"]
    _count_from_zero(gateway, notification)

    replies = [
        gateway.request("POST", f"/api/notifications/{path}/x", body=b"{}", headers={**bearer(), **JSON})
        for _ in range(4)
    ]

    assert [r.status for r in replies] == [503] * 4
    assert len(notification.requests()) == 3  # the fourth never left the gateway
    assert replies[-1].json["error"]["message"].startswith("The notification service is unavailable")
    assert breaker_states(gateway)[f"notification {notification.url}"] == "open"


def test_after_the_cool_down_one_trial_goes_through_and_its_success_closes_the_breaker(gateway, stubs):
    notification = stubs["notification"]
    key = _open_the_breaker(gateway, notification)
    while_open = gateway.request("GET", "/api/notifications/5", headers=bearer())
    time.sleep(COOL_DOWN + 0.1)
    half_open = breaker_states(gateway)[key]

    with ThreadPoolExecutor(max_workers=1) as pool:
        trial = pool.submit(gateway.request, "GET", "/api/notifications/slow/1", headers=bearer())
        time.sleep(0.2)  # the trial is at the upstream for half a second
        during_trial = gateway.request("GET", "/api/notifications/5", headers=bearer())
        trial_reply = trial.result()
    after = gateway.request("GET", "/api/notifications/5", headers=bearer())

    assert (while_open.status, half_open, during_trial.status) == (503, "half_open", 503)
    assert (trial_reply.status, after.status) == (200, 200)
    paths = [r["path"] for r in notification.requests()]
    assert paths == ["/api/notifications/unavailable/x"] * 3 + ["/api/notifications/slow/1", "/api/notifications/5"]
    assert breaker_states(gateway)[key] == "closed"


def test_after_the_cool_down_a_failed_trial_opens_the_breaker_again(gateway, stubs):
    notification = stubs["notification"]
    key = _open_the_breaker(gateway, notification)
    time.sleep(COOL_DOWN + 0.1)

    trial = _failing_post(gateway)
    right_after = gateway.request("GET", "/api/notifications/5", headers=bearer())

    assert (trial.status, right_after.status) == (503, 503)
    assert len(notification.requests()) == 4  # three failures and the trial; nothing after it
    assert breaker_states(gateway)[key] == "open"


def test_a_503_for_a_service_behind_the_instance_leaves_its_breaker_closed(gateway, stubs):
    # given: loan is up, but answers 503 service_unavailable in its envelope (user_service, behind it, is down)
    loan = stubs["loan"]
    creates = [
        gateway.request("POST", "/api/loan/dependency-down/x", body=b"{}", headers={**bearer(), **JSON})
        for _ in range(5)
    ]

    # when
    read = gateway.request("GET", "/api/loan/1", headers=bearer())
    health = gateway.request("GET", "/health")

    # then: every create reached loan and got its answer; loan's reads and health are untouched
    assert [r.status for r in creates] == [503] * 5
    assert {r.json["error"]["code"] for r in creates} == {"service_unavailable"}
    assert [r["method"] for r in loan.requests() if "dependency-down" in r["path"]] == ["POST"] * 5
    assert read.status == 200
    assert breaker_states(gateway)[f"loan {loan.url}"] == "closed"
    assert health.json["services"]["loan"]["status"] == "up"


def test_a_read_answered_503_for_a_service_behind_the_instance_is_still_retried(gateway, stubs):
    reply = gateway.request("GET", "/api/loan/dependency-down/x", headers=bearer())

    assert (reply.status, reply.json["error"]["code"]) == (503, "service_unavailable")
    assert [r["method"] for r in stubs["loan"].requests()] == ["GET"] * 3
    assert breaker_states(gateway)[f"loan {stubs['loan'].url}"] == "closed"
