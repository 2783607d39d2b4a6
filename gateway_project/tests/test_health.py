"""Health for people and for probes: /health from the background checks, /health/live and /health/ready."""

import time

import pytest

from tests.conftest import gateway_running, stubs_running

SLASHES = pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])


def _health_checks(stubs) -> dict[str, int]:
    return {name: stub.health_checks() for name, stub in stubs.items()}


def test_health_is_served_from_the_background_checks_without_calling_any_upstream(gateway, stubs):
    before = _health_checks(stubs)

    replies = [gateway.request("GET", "/health") for _ in range(5)]

    assert {r.status for r in replies} == {200}
    assert _health_checks(stubs) == before


@SLASHES
def test_live_answers_without_calling_any_upstream(gateway, stubs, slash):
    before = _health_checks(stubs)

    reply = gateway.request("GET", f"/health/live{slash}")

    assert (reply.status, reply.json) == (200, {"status": "alive"})
    assert _health_checks(stubs) == before


@SLASHES
def test_ready_reports_the_cached_state_of_every_upstream(gateway, stubs, slash):
    before = _health_checks(stubs)

    reply = gateway.request("GET", f"/health/ready{slash}")

    assert reply.status == 200
    assert reply.json["status"] == "ready"
    loan = reply.json["services"]["loan"]["instances"][stubs["loan"].url]
    assert (loan["status"], loan["breaker"]) == ("up", "closed")
    assert loan["checked_seconds_ago"] >= 0
    assert _health_checks(stubs) == before


@pytest.fixture(scope="module")
def loan_down(tmp_path_factory):
    """A gateway whose loan service never came up."""
    folder = tmp_path_factory.mktemp("loan-down")
    with stubs_running(folder, running=("user", "notification")) as stubs, gateway_running(folder, stubs) as started:
        yield started


def _ready(gateway):
    deadline = time.monotonic() + 5
    while (reply := gateway.request("GET", "/health/ready")).status != 200:
        assert time.monotonic() < deadline, f"never ready: {reply.body!r}"
        time.sleep(0.1)
    return reply


def test_ready_whatever_upstreams_are_down(loan_down):
    reply = _ready(loan_down)

    services = reply.json["services"]
    assert (services["loan"]["status"], services["user"]["status"]) == ("down", "up")


def test_health_is_503_while_an_upstream_is_down_and_live_is_200(loan_down):
    _ready(loan_down)

    health = loan_down.request("GET", "/health")
    live = loan_down.request("GET", "/health/live")

    assert health.status == 503
    assert health.json["status"] == "degraded"
    assert health.json["services"]["loan"]["status"] == "down"
    assert live.status == 200


@pytest.fixture(scope="module")
def first_checks_running(tmp_path_factory):
    """A gateway just started, whose first health check of loan takes a second and a half to answer."""
    folder = tmp_path_factory.mktemp("first-checks-running")
    with stubs_running(folder) as stubs:
        stubs["loan"].slow_health(1.5)
        with gateway_running(folder, stubs, wait_for_checks=False) as started:
            yield started


def test_health_never_checks_an_instance_itself_even_before_the_first_checks_are_done(first_checks_running):
    loan = first_checks_running.stubs["loan"]

    # when: the checker's first round still waits for loan
    early = first_checks_running.request("GET", "/health")
    _ready(first_checks_running)
    later = first_checks_running.request("GET", "/health")

    # then: loan is not known to be up yet, and only the checker ever asked it
    assert early.elapsed < 0.5
    assert (early.status, early.json["status"]) == (503, "degraded")
    early_loan = early.json["services"]["loan"]["instances"][loan.url]
    assert (early_loan["status"], early_loan["checked_seconds_ago"]) == ("down", None)
    assert later.status == 200
    assert loan.health_checks() == 2  # the stub's own start, then the checker's one round


@pytest.fixture(scope="module", params=["", "ftp://loan:8002"], ids=["no-instance", "not-http"])
def misconfigured(request, tmp_path_factory):
    """A gateway whose loan upstream is configured wrongly."""
    folder = tmp_path_factory.mktemp("misconfigured")
    with (
        stubs_running(folder, running=()) as stubs,
        gateway_running(folder, stubs, LOAN_SERVICE_URLS=request.param) as started,
    ):
        yield started


def test_not_ready_while_misconfigured_but_live(misconfigured):
    ready = misconfigured.request("GET", "/health/ready")
    live = misconfigured.request("GET", "/health/live")

    assert (ready.status, ready.json["status"]) == (503, "misconfigured")
    assert live.status == 200


@pytest.fixture(scope="module")
def behind_a_proxy(tmp_path_factory):
    """A gateway behind one proxy (its X-Forwarded-For names the client), whose loan service is down."""
    folder = tmp_path_factory.mktemp("behind-a-proxy")
    with (
        stubs_running(folder, running=("user", "notification")) as stubs,
        gateway_running(folder, stubs, NUM_PROXIES="1") as started,
    ):
        _ready(started)
        yield started


OUTSIDE = {"X-Forwarded-For": "203.0.113.9"}
INSIDE = {"X-Forwarded-For": "10.1.2.3"}


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_a_public_caller_sees_each_service_up_or_down_but_no_upstream_address(behind_a_proxy, path):
    reply = behind_a_proxy.request("GET", path, headers=OUTSIDE)

    assert reply.json["services"] == {
        "user": {"status": "up"},
        "loan": {"status": "down"},
        "notification": {"status": "up"},
    }
    assert all(stub.url.encode() not in reply.body for stub in behind_a_proxy.stubs.values())
    assert b"127.0.0.1" not in reply.body


def test_a_public_caller_gets_the_same_status_codes(behind_a_proxy):
    health = behind_a_proxy.request("GET", "/health", headers=OUTSIDE)
    ready = behind_a_proxy.request("GET", "/health/ready", headers=OUTSIDE)

    assert (health.status, health.json["status"]) == (503, "degraded")
    assert (ready.status, ready.json["status"]) == (200, "ready")


def test_a_caller_on_the_internal_network_sees_every_instance(behind_a_proxy):
    loan_url = behind_a_proxy.stubs["loan"].url

    reply = behind_a_proxy.request("GET", "/health", headers=INSIDE)

    loan = reply.json["services"]["loan"]["instances"][loan_url]
    assert (reply.status, loan["status"], loan["breaker"]) == (503, "down", "closed")
