"""Several instances of one service: round-robin, and a stopped instance skipped without the client noticing."""

import time

from tests.conftest import bearer


def _ports(replies) -> list[str]:
    return [reply.headers["X-Upstream-Port"] for reply in replies]


def test_requests_alternate_between_the_instances_of_a_service(gateway, stubs):
    replies = [gateway.request("GET", "/api/user/profile", headers=bearer()) for _ in range(4)]

    assert {r.status for r in replies} == {200}
    ports = _ports(replies)
    assert sorted(ports) == sorted([str(stubs["user"].port), str(stubs["user_b"].port)] * 2)
    assert ports[0] != ports[1]


def test_a_stopped_instance_is_skipped_even_for_posts_that_never_reached_it(gateway, stubs):
    stubs["user_b"].stop()
    try:
        gets = [gateway.request("GET", "/api/user/profile", headers=bearer()) for _ in range(4)]
        posts = [
            gateway.request("POST", "/api/user/logout", body=b'{"refresh": "r"}', headers=bearer()) for _ in range(4)
        ]
    finally:
        stubs["user_b"].start()

    assert {r.status for r in gets + posts} == {200}
    assert set(_ports(gets + posts)) == {str(stubs["user"].port)}
    logouts = [r for r in stubs["user"].requests() if r["path"] == "/api/user/logout"]
    assert len(logouts) == 4  # each POST reached the live instance exactly once


def test_the_restarted_instance_takes_requests_again(gateway, stubs):
    stubs["user_b"].stop()
    try:
        for _ in range(4):  # enough refused connections to open its breaker
            gateway.request("GET", "/api/user/profile", headers=bearer())
    finally:
        stubs["user_b"].start()

    ports: list[str] = []
    deadline = time.monotonic() + 5
    while str(stubs["user_b"].port) not in ports:  # after the breaker's cool-down, a trial request closes it
        assert time.monotonic() < deadline, "the restarted instance never took a request"
        ports = _ports([gateway.request("GET", "/api/user/profile", headers=bearer()) for _ in range(2)])
        time.sleep(0.1)
