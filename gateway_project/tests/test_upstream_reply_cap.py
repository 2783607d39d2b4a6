"""An upstream answer larger than GATEWAY_MAX_UPSTREAM_BYTES is a 502 in the envelope, not a worker's memory."""

import pytest

from tests.conftest import bearer, breaker_states, gateway_running, stubs_running

CAP = 2500


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("capped")
    with stubs_running(folder) as stubs, gateway_running(folder, stubs, GATEWAY_MAX_UPSTREAM_BYTES=str(CAP)) as started:
        yield started


def test_an_answer_within_the_cap_passes(capped):
    reply = capped.request("GET", "/api/user/profile", headers=bearer())

    assert reply.status == 200
    assert len(reply.body) <= CAP


def test_an_answer_over_the_cap_is_a_502_in_the_envelope_not_retried_and_no_breaker_failure(capped):
    user = capped.stubs["user"]
    user.forget()

    replies = [  # more than the breaker's failures (3 in these tests)
        capped.request("GET", "/api/user/profile?pad=" + "p" * CAP, headers=bearer()) for _ in range(4)
    ]  # the stub echoes the path: an answer over the cap

    assert [r.status for r in replies] == [502] * 4
    reply = replies[0]
    assert reply.json["success"] is False
    assert reply.json["error"]["code"] == "upstream_reply_too_large"
    assert reply.json["correlation_id"]
    assert len([r for r in user.requests() if r["path"].startswith("/api/user/profile")]) == 4  # GETs, none retried
    assert set(breaker_states(capped).values()) == {"closed"}  # the instance answered: it is not failing
    assert capped.request("GET", "/api/user/profile", headers=bearer()).status == 200
