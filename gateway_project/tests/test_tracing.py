"""Tracing at the gateway: a server span per request, a client span per forwarding attempt, and what goes upstream.

Through the Django test client (the gateway in this process, where its spans
can be read) to a real stub upstream process, which echoes the headers it got.
"""

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from common import tracing
from gateway import upstreams
from tests.conftest import Stub

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
SIGNUP = "/api/user/signup"  # public: forwarded without a token


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    started = Stub("user", tmp_path_factory.mktemp("tracing"))
    started.start()
    yield started
    started.stop()


@pytest.fixture
def gateway_to_stub(settings, stub):
    """Every upstream of this process is the stub (fresh instances, breakers and connections)."""
    settings.UPSTREAMS = {name: [stub.url] for name in ("user", "loan", "notification")}
    upstreams.upstreams.cache_clear()
    yield stub
    upstreams.upstreams.cache_clear()


@pytest.fixture
def traced(monkeypatch):
    """Tracing on (an endpoint set; spans kept in memory): returns a function giving the finished spans."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never reached: the exporter is ours
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("gateway", exporter=exporter)

    def finished():
        tracing.force_flush()
        return exporter.get_finished_spans()

    yield finished
    tracing.shutdown_tracing()


def signup(client, **headers):
    """POST /api/user/signup through the gateway; the headers the stub received (lower-cased names)."""
    body = json.dumps({"email": "a@b.example"})
    response = client.post(SIGNUP, data=body, content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    return {name.lower(): value for name, value in response.json()["data"]["headers"].items()}


def trace_id_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


def test_off_forwarding_adds_no_trace_context(client, gateway_to_stub):
    assert tracing.ENABLED is False

    received = signup(client)

    assert "traceparent" not in received
    assert "tracestate" not in received


def test_off_an_untrusted_client_traceparent_is_not_forwarded(client, gateway_to_stub):
    received = signup(client, HTTP_TRACEPARENT=CLIENT_TRACEPARENT, HTTP_TRACESTATE="vendor=1", HTTP_BAGGAGE="user=5")

    assert "traceparent" not in received
    assert "tracestate" not in received
    assert "baggage" not in received


def test_off_a_trusted_client_traceparent_passes_through_unchanged(client, gateway_to_stub, settings):
    settings.OTEL_TRUST_INCOMING_TRACEPARENT = True

    received = signup(client, HTTP_TRACEPARENT=CLIENT_TRACEPARENT)

    assert received["traceparent"] == CLIENT_TRACEPARENT


def test_on_a_request_is_a_server_span_with_a_forward_span_per_attempt(client, gateway_to_stub, traced):
    signup(client)

    spans = traced()
    [server] = [span for span in spans if span.kind == SpanKind.SERVER]
    [forward] = [span for span in spans if span.name == "gateway.forward user"]
    assert forward.kind == SpanKind.CLIENT
    assert forward.parent.span_id == server.context.span_id
    assert forward.context.trace_id == server.context.trace_id
    assert dict(forward.attributes) == {
        "gateway.upstream": "user",
        "gateway.instance": gateway_to_stub.url,
        "gateway.attempt": 1,
        "gateway.breaker_state": "closed",
        "http.response.status_code": 200,
    }
    assert forward.status.status_code == StatusCode.UNSET


def test_on_the_upstream_receives_the_forward_spans_traceparent(client, gateway_to_stub, traced):
    received = signup(client)

    [forward] = [span for span in traced() if span.name == "gateway.forward user"]
    version, trace_id, parent_id, flags = received["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    assert trace_id == f"{forward.context.trace_id:032x}"
    assert parent_id == f"{forward.context.span_id:016x}"


def test_on_an_untrusted_client_traceparent_is_neither_continued_nor_forwarded(client, gateway_to_stub, traced):
    received = signup(client, HTTP_TRACEPARENT=CLIENT_TRACEPARENT, HTTP_TRACESTATE="vendor=1")

    spans = traced()
    [server] = [span for span in spans if span.kind == SpanKind.SERVER]
    assert server.parent is None
    assert f"{server.context.trace_id:032x}" != CLIENT_TRACE_ID
    assert trace_id_of(received["traceparent"]) == f"{server.context.trace_id:032x}"
    assert "tracestate" not in received


def test_on_a_trusted_client_traceparent_is_continued(client, gateway_to_stub, settings, monkeypatch):
    settings.OTEL_TRUST_INCOMING_TRACEPARENT = True  # read when tracing starts
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    exporter = InMemorySpanExporter()
    tracing.configure_tracing("gateway", exporter=exporter)
    try:
        received = signup(client, HTTP_TRACEPARENT=CLIENT_TRACEPARENT, HTTP_TRACESTATE="vendor=1")
        tracing.force_flush()
    finally:
        tracing.shutdown_tracing()

    [server] = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert f"{server.parent.span_id:016x}" == CLIENT_SPAN_ID
    assert trace_id_of(received["traceparent"]) == CLIENT_TRACE_ID
    assert [received["traceparent"].count(CLIENT_SPAN_ID), received["tracestate"]] == [0, "vendor=1"]


def test_on_a_failed_attempt_is_an_error_span(client, settings, traced):
    settings.UPSTREAMS = {name: ["http://127.0.0.1:9"] for name in ("user", "loan", "notification")}  # nobody there
    settings.GATEWAY_MAX_RETRIES = 0
    upstreams.upstreams.cache_clear()
    try:
        response = client.post(SIGNUP, data="{}", content_type="application/json")
    finally:
        upstreams.upstreams.cache_clear()

    assert response.status_code == 503
    [forward] = [span for span in traced() if span.name == "gateway.forward user"]
    assert forward.status.status_code == StatusCode.ERROR
    assert forward.attributes["gateway.instance"] == "http://127.0.0.1:9"
    assert "http.response.status_code" not in forward.attributes


def test_on_a_retry_that_reaches_the_next_instance_succeeds_under_the_same_request(client, settings, stub, traced):
    settings.UPSTREAMS = {name: ["http://127.0.0.1:9", stub.url] for name in ("user", "loan", "notification")}
    settings.GATEWAY_MAX_RETRIES = 3
    upstreams.upstreams.cache_clear()
    try:
        for _ in range(4):  # the balancer alternates: some requests go to the dead instance first
            signup(client)
    finally:
        upstreams.upstreams.cache_clear()

    spans = traced()
    retried = {}
    for span in spans:
        if span.name == "gateway.forward user":
            retried.setdefault(span.parent.span_id, []).append(span)
    recovered = [attempts for attempts in retried.values() if len(attempts) > 1]
    assert recovered, "no request met the dead instance first"
    for attempts in recovered:
        first, *_, last = attempts
        assert (first.attributes["gateway.instance"], first.status.status_code) == (
            "http://127.0.0.1:9",
            StatusCode.ERROR,
        )
        assert (last.attributes["gateway.instance"], last.attributes["http.response.status_code"]) == (stub.url, 200)
        assert [span.attributes["gateway.attempt"] for span in attempts] == list(range(1, len(attempts) + 1))
