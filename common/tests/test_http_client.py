"""The resilient client against real local servers: timeouts, retries only when safe, the circuit breaker."""

import json
import threading
import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common import tracing
from common.correlation import correlation_scope
from common.errors import UpstreamUnavailable
from common.http import CircuitBreaker, CircuitOpen, ServiceClient, UpstreamTimeout
from tests.local_servers import Reply


def client(url: str, **options) -> ServiceClient:
    return ServiceClient(url, service_name="upstream", **{"backoff": 0.01, **options})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_successful_call_returns_status_and_json(http_server):
    server = http_server(default=Reply(body=b'{"id": 3}'))

    reply = client(server.url).get_json("/api/thing")

    assert (reply.status, reply.data) == (200, {"id": 3})


def test_the_call_carries_json_the_correlation_id_and_configured_headers(http_server):
    server = http_server()

    with correlation_scope("corr-77"):
        client(server.url, headers={"X-Service-Key": "k"}).request("POST", "/internal/x", {"a": 1})

    [hit] = server.hits
    assert (hit.method, hit.path, json.loads(hit.body)) == ("POST", "/internal/x", {"a": 1})
    assert (hit.headers["X-Correlation-ID"], hit.headers["X-Service-Key"]) == ("corr-77", "k")
    assert hit.headers["Content-Type"] == "application/json"


def test_a_body_that_is_not_json_gives_none(http_server):
    server = http_server(default=Reply(body=b"<html>oops</html>"))

    assert client(server.url).get_json("/").data is None


def test_a_client_error_is_an_answer_not_a_failure(http_server):
    server = http_server(default=Reply(status=404, body=b'{"success": false}'))
    breaker = CircuitBreaker(failure_threshold=1)

    reply = client(server.url, breaker=breaker).get_json("/api/user/99")

    assert reply.status == 404
    assert (server.methods, breaker.state) == (["GET"], "closed")


def test_a_hanging_server_times_out_instead_of_hanging(http_server):
    server = http_server(default=Reply(hang=10))
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout):
        client(server.url, read_timeout=0.3, max_retries=0).get_json("/x")

    assert time.monotonic() - started < 1.5


def test_a_timed_out_get_is_retried_but_a_timed_out_post_is_not(http_server):
    server = http_server(default=Reply(hang=10))
    hanging = client(server.url, read_timeout=0.2, max_retries=2)

    with pytest.raises(UpstreamTimeout):
        hanging.get_json("/x")
    with pytest.raises(UpstreamTimeout):
        hanging.request("POST", "/x", {"a": 1})  # it may have been done: never twice

    assert server.methods == ["GET", "GET", "GET", "POST"]


def test_a_get_answered_503_is_retried_until_it_succeeds(http_server):
    server = http_server(replies=[Reply(status=503), Reply(status=502)], default=Reply(body=b'{"ok": 1}'))

    reply = client(server.url, max_retries=2).get_json("/x")

    assert (reply.status, reply.data, len(server.hits)) == (200, {"ok": 1}, 3)


def test_a_post_answered_503_is_not_retried(http_server):
    server = http_server(default=Reply(status=503))

    with pytest.raises(UpstreamUnavailable):
        client(server.url, max_retries=2).request("POST", "/x", {"a": 1})

    assert server.methods == ["POST"]


def test_retries_give_up_after_max_retries(http_server):
    server = http_server(default=Reply(status=503))

    with pytest.raises(UpstreamUnavailable) as raised:
        client(server.url, max_retries=2).get_json("/x")

    assert len(server.hits) == 3
    assert raised.value.details == {"service": "upstream"}


@pytest.mark.parametrize(
    ("method", "retries", "state"), [("POST", 2, "open"), ("POST", 1, "closed"), ("GET", 2, "open")]
)
def test_a_refused_connection_is_retried_whatever_the_method(closed_url, method, retries, state):
    # The request never reached the service, so repeating it is safe. Three attempts trip a threshold of three.
    breaker = CircuitBreaker(failure_threshold=3)

    with pytest.raises(UpstreamUnavailable) as raised:
        client(closed_url, max_retries=retries, breaker=breaker).request(method, "/x", {"a": 1})

    assert not isinstance(raised.value, CircuitOpen)
    assert breaker.state == state


def test_the_breaker_opens_after_consecutive_failures_and_then_refuses_without_calling(http_server):
    server = http_server(default=Reply(status=503))
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30)
    failing = client(server.url, max_retries=0, breaker=breaker)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            failing.get_json("/x")

    with pytest.raises(CircuitOpen):
        failing.get_json("/x")

    assert breaker.state == "open"
    assert len(server.hits) == 3


def test_failures_that_are_not_consecutive_do_not_open_the_breaker(http_server):
    server = http_server(replies=[Reply(status=503), Reply(status=503), Reply(), Reply(status=503), Reply(status=503)])
    breaker = CircuitBreaker(failure_threshold=3)
    flaky = client(server.url, max_retries=0, breaker=breaker)

    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(flaky.get_json("/x").status)
        except UpstreamUnavailable:
            outcomes.append("failed")

    assert outcomes == ["failed", "failed", 200, "failed", "failed"]
    assert breaker.state == "closed"


def test_after_the_reset_timeout_one_trial_closes_the_breaker(http_server, closed_url):
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5, clock=clock)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            client(closed_url, max_retries=0, breaker=breaker).get_json("/x")
    assert breaker.state == "open"

    clock.now = 5
    assert breaker.state == "half_open"
    reply = client(http_server().url, max_retries=0, breaker=breaker).get_json("/x")

    assert reply.status == 200
    assert breaker.state == "closed"


def test_a_failed_trial_opens_the_breaker_for_another_reset_timeout(closed_url):
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5, clock=clock)
    down = client(closed_url, max_retries=0, breaker=breaker)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            down.get_json("/x")
    clock.now = 6

    with pytest.raises(UpstreamUnavailable) as trial:
        down.get_json("/x")
    assert not isinstance(trial.value, CircuitOpen)

    assert breaker.state == "open"
    clock.now = 10
    assert breaker.state == "open"
    clock.now = 11
    assert breaker.state == "half_open"


def test_half_open_lets_exactly_one_trial_through_at_a_time(http_server):
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    server = http_server(replies=[Reply(status=503), Reply(hang=0.3)])
    slow = client(server.url, max_retries=0, breaker=breaker)
    with pytest.raises(UpstreamUnavailable):
        slow.get_json("/x")
    clock.now = 5
    trial = threading.Thread(target=slow.get_json, args=("/trial",))
    trial.start()
    while len(server.hits) < 2:
        time.sleep(0.01)

    with pytest.raises(CircuitOpen):
        slow.get_json("/second")
    trial.join()

    assert [hit.path for hit in server.hits] == ["/x", "/trial"]
    assert breaker.state == "closed"


def test_a_service_that_is_down_is_a_503_envelope_for_the_caller(api, settings, closed_url, db):
    settings.UPSTREAM_URL = closed_url

    response = api.get("/upstream")

    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("service_unavailable", {"service": "upstream"})


def test_a_service_that_hangs_is_a_timeout_envelope_for_the_caller(api, settings, http_server, db):
    settings.UPSTREAM_URL = http_server(default=Reply(hang=10)).url
    started = time.monotonic()

    response = api.get("/upstream")

    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_without_tracing_a_call_carries_no_traceparent(http_server):
    server = http_server()

    client(server.url).get_json("/api/thing")

    [hit] = server.hits
    assert "traceparent" not in {name.lower() for name in hit.headers}


def test_while_tracing_a_call_carries_the_span_in_progress(http_server, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    server = http_server()
    tracing.configure_tracing("common_tests", exporter=InMemorySpanExporter())
    try:
        with tracing.get_tracer("test").start_as_current_span("check customer") as span:
            client(server.url).get_json("/internal/users/5")
    finally:
        tracing.shutdown_tracing()

    [hit] = server.hits
    context = span.get_span_context()
    assert hit.headers["traceparent"].split("-")[1:3] == [f"{context.trace_id:032x}", f"{context.span_id:016x}"]
