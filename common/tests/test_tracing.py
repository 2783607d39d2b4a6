"""OpenTelemetry tracing: off unless an OTLP endpoint is set; when on, spans for requests and ids on log lines."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.db import connection, transaction
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common import events, tracing
from common.django_settings import web_basics
from common.events import EVENT_TASK_NAME
from common.outbox.models import OutboxMessage
from common.outbox.publisher import publish, relay_pending
from tests.local_servers import wait_until

pytestmark = pytest.mark.django_db

COMMON = Path(__file__).resolve().parents[1]
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-00f067aa0ba902b7-01"

OFF_BY_DEFAULT = """
import os, sys
import django
django.setup()
from common.logging import ContextFilter
from common.tracing import configure_tracing
print(configure_tracing("common_tests"))
print(any(name.startswith("opentelemetry") for name in sys.modules))
from opentelemetry import trace
print(type(trace.get_tracer_provider()).__name__)
"""


@pytest.fixture
def spans(monkeypatch):
    """Tracing on (an endpoint set; spans kept in memory instead of exported); returns the finished spans."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never reached: the exporter is ours
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("common_tests", exporter=exporter)

    def finished():
        tracing.force_flush()
        return exporter.get_finished_spans()

    yield finished
    tracing.shutdown_tracing()


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        pytest.param({}, False, id="nothing-set"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False, id="blank-endpoint"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True, id="endpoint"),
        pytest.param({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True, id="traces-endpoint"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
            False,
            id="disabled-wins",
        ),
    ],
)
def test_tracing_is_wanted_only_with_an_endpoint_and_not_disabled(environ, wanted):
    assert tracing.tracing_wanted(environ) is wanted


def test_off_by_default_nothing_of_opentelemetry_is_even_imported():
    environ = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

    result = subprocess.run(
        [sys.executable, "-c", OFF_BY_DEFAULT], cwd=COMMON, env=environ, capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["False", "False", "ProxyTracerProvider"]


def test_off_a_log_line_has_no_trace_ids(json_logs):
    logging.getLogger("lms.test").info("no tracing here")

    [line] = json_logs()
    assert "trace_id" not in line


def test_configuring_twice_keeps_the_first_provider(spans):
    second = InMemorySpanExporter()

    assert tracing.configure_tracing("again", exporter=second)
    with tracing.get_tracer("test").start_as_current_span("work"):
        pass

    assert [span.name for span in spans()] == ["work"]
    assert second.get_finished_spans() == ()


def test_tracing_puts_its_middleware_first_and_shutting_down_takes_it_out(monkeypatch):
    from django.conf import settings

    middleware = settings.MIDDLEWARE
    before = list(middleware)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracing.configure_tracing("common_tests", exporter=InMemorySpanExporter())
    try:
        during = list(settings.MIDDLEWARE)
    finally:
        tracing.shutdown_tracing()

    assert during[:2] == [tracing.UNTRUSTED_MIDDLEWARE, DjangoInstrumentor._opentelemetry_middleware]
    assert during[2:] == before
    # In place: whoever holds the list (an override_settings to be undone, the shared SERVICE_MIDDLEWARE) has it back.
    assert settings.MIDDLEWARE is middleware
    assert middleware == before


def test_spans_carry_the_service_name(spans):
    with tracing.get_tracer("test").start_as_current_span("work"):
        pass

    assert spans()[0].resource.attributes["service.name"] == "common_tests"


def _resource_of_a_span(service_name: str, **options) -> dict:
    """Tracing on just for one span, configured with these arguments: that span's resource attributes."""
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(service_name, exporter=exporter, **options)
    try:
        with tracing.get_tracer("test").start_as_current_span("work"):
            pass
        tracing.force_flush()
    finally:
        tracing.shutdown_tracing()
    return dict(exporter.get_finished_spans()[0].resource.attributes)


def test_spans_name_the_process_role_and_pid(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")

    resource = _resource_of_a_span("loan_service", role="relay")

    assert (resource["lms.process"], resource["process.pid"]) == ("relay", os.getpid())


def test_a_processs_own_span_is_a_child_and_records_a_failure(spans):
    with tracing.get_tracer("test").start_as_current_span("task") as task:
        with tracing.span("notification.send email", kind="CLIENT", attributes={"lms.notification.id": 5}):
            pass
        with pytest.raises(TimeoutError), tracing.span("notification.send sms", kind="CLIENT"):
            raise TimeoutError("provider silent")

    sent, failed, _ = spans()
    assert (sent.name, sent.kind, sent.parent.span_id) == (
        "notification.send email",
        SpanKind.CLIENT,
        task.context.span_id,
    )
    assert sent.attributes["lms.notification.id"] == 5
    assert sent.status.is_ok
    assert not failed.status.is_ok
    assert [event.name for event in failed.events] == ["exception"]


def test_off_a_processs_own_span_is_nothing():
    assert tracing.ENABLED is False
    with tracing.span("notification.send email", kind="CLIENT"):
        tracing.annotate_current_span({"lms.correlation_id": "x"})  # no error: there is no span


def test_a_requests_span_carries_its_correlation_id(spans, api):
    response = api.post("/echo", {"amount": "5"}, format="json", HTTP_X_CORRELATION_ID="corr-9")

    [server] = [span for span in spans() if span.kind == SpanKind.SERVER]
    assert server.attributes["lms.correlation_id"] == response["X-Correlation-ID"] == "corr-9"


def test_sqlite_queries_are_spans_of_the_request(spans):
    from django.db.backends.sqlite3.base import Database  # the module Django's SQLite backend connects through

    with tracing.get_tracer("test").start_as_current_span("request") as request:
        connection = Database.connect(":memory:")  # pytest-django's test database was opened before tracing
        connection.cursor().execute("SELECT 1")
        connection.close()

    queries = [span for span in spans() if span.attributes.get("db.system") == "sqlite"]
    assert [span.attributes["db.statement"] for span in queries] == ["SELECT 1"]
    assert queries[0].parent.span_id == request.context.span_id


def test_otel_service_name_renames_the_process(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "loan-worker")

    assert _resource_of_a_span("loan_service")["service.name"] == "loan-worker"


def test_a_log_line_inside_a_span_carries_its_trace_and_span_ids(spans, json_logs):
    with tracing.get_tracer("test").start_as_current_span("work") as span:
        logging.getLogger("lms.test").info("inside")
    logging.getLogger("lms.test").info("outside")

    inside, outside = json_logs()
    context = span.get_span_context()
    assert (inside["trace_id"], inside["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert inside["correlation_id"] == ""  # still there, beside the trace ids
    assert "trace_id" not in outside


def test_a_request_is_a_server_span_and_its_log_lines_carry_its_ids(spans, api, json_logs):
    response = api.post("/echo", {"amount": "5"}, format="json", HTTP_X_CORRELATION_ID="corr-7")

    assert response.status_code == 200
    [server] = [span for span in spans() if span.kind == SpanKind.SERVER]
    assert server.attributes["http.status_code"] == 200
    access = [line for line in json_logs() if line.get("correlation_id") == "corr-7"]
    assert access, "no log line of the request"
    assert {line["trace_id"] for line in access} == {f"{server.context.trace_id:032x}"}


def test_health_and_metrics_polls_make_no_spans(spans, api):
    assert api.get("/health").status_code == 200

    assert spans() == ()


def test_untrusted_incoming_traceparent_starts_a_new_trace(spans, api, settings):
    assert settings.OTEL_TRUST_INCOMING_TRACEPARENT is False  # tests.settings, like the gateway

    api.post("/echo", {"amount": "5"}, format="json", HTTP_TRACEPARENT=CLIENT_TRACEPARENT)

    [server] = [span for span in spans() if span.kind == SpanKind.SERVER]
    assert f"{server.context.trace_id:032x}" != CLIENT_TRACE_ID
    assert server.parent is None


def test_trusted_incoming_traceparent_is_continued(monkeypatch, settings, api):
    settings.OTEL_TRUST_INCOMING_TRACEPARENT = True  # read when tracing starts, as a service's settings say
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    exporter = InMemorySpanExporter()
    tracing.configure_tracing("common_tests", exporter=exporter)
    try:
        api.post("/echo", {"amount": "5"}, format="json", HTTP_TRACEPARENT=CLIENT_TRACEPARENT)
        tracing.force_flush()
    finally:
        tracing.shutdown_tracing()

    [server] = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert f"{server.context.trace_id:032x}" == CLIENT_TRACE_ID
    assert f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"


def test_after_shutdown_requests_make_no_spans_and_logs_no_ids(spans, api, json_logs):
    tracing.shutdown_tracing()

    api.post("/echo", {"amount": "5"}, format="json", HTTP_X_CORRELATION_ID="corr-8")

    assert tracing.ENABLED is False
    assert all("trace_id" not in line for line in json_logs())
    assert spans() == ()


@pytest.mark.parametrize(("value", "trusted"), [(None, True), ("false", False), ("true", True)])
def test_services_trust_incoming_trace_context_unless_told_not_to(monkeypatch, tmp_path, value, trusted):
    if value is None:
        monkeypatch.delenv("OTEL_TRUST_INCOMING_TRACEPARENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRUST_INCOMING_TRACEPARENT", value)

    assert web_basics(var=tmp_path, service="loan_service")["OTEL_TRUST_INCOMING_TRACEPARENT"] is trusted


def registered_event() -> events.UserRegistered:
    return events.UserRegistered(user_id=1, email="u1@example.com", role="customer", is_approved=True)


def test_off_an_outbox_row_has_no_traceparent():
    with transaction.atomic():
        envelope = publish(registered_event())

    assert OutboxMessage.objects.get(pk=envelope.event_id).traceparent is None


@pytest.fixture
def event_app(broker):
    """A Celery app on the test broker whose worker (in this process) records the trace each event ran in."""
    app = Celery("tracing-test", broker=broker, set_as_current=False)
    app.conf.broker_connection_retry = False
    ran_in: list[str] = []

    @app.task(name=EVENT_TASK_NAME, shared=False)
    def consume(message):
        context = trace.get_current_span().get_span_context()
        ran_in.append(f"{context.trace_id:032x}-{context.span_id:016x}")

    app.ran_in = ran_in
    yield app
    app.close()


@pytest.mark.django_db(transaction=True)
def test_an_event_is_sent_and_consumed_in_the_trace_of_the_span_that_wrote_it(spans, event_app, broker):
    with tracing.get_tracer("test").start_as_current_span("decide") as decide, transaction.atomic():
        envelope = publish(registered_event())
    decided = decide.get_span_context()

    stored = OutboxMessage.objects.get(pk=envelope.event_id).traceparent
    assert stored.split("-")[1:3] == [f"{decided.trace_id:032x}", f"{decided.span_id:016x}"]
    assert relay_pending(event_app) == 1  # a relay pass long after the request: no span of its own open
    with start_worker(event_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        wait_until(lambda: event_app.ran_in, timeout=10)

    [producer] = [span for span in spans() if span.kind == SpanKind.PRODUCER]
    [consumer] = [span for span in spans() if span.kind == SpanKind.CONSUMER]
    assert (producer.context.trace_id, producer.parent.span_id) == (decided.trace_id, decided.span_id)
    assert (consumer.context.trace_id, consumer.parent.span_id) == (decided.trace_id, producer.context.span_id)
    assert event_app.ran_in == [f"{decided.trace_id:032x}-{consumer.context.span_id:016x}"]


@pytest.mark.postgres  # SQLite's queries make no spans, so there it could not fail
@pytest.mark.django_db(transaction=True)
def test_an_idle_relay_pass_makes_no_spans(spans, event_app):
    connection.close()  # the next query connects again, through the now traced psycopg
    try:
        with tracing.get_tracer("test").start_as_current_span("query") as query:
            OutboxMessage.objects.count()

        assert relay_pending(event_app) == 0
    finally:
        connection.close()  # no traced connection outlives the test

    queries = [span for span in spans() if span.attributes.get("db.system") == "postgresql"]
    assert queries, "psycopg made no spans at all"
    assert {span.parent.span_id for span in queries} == {query.get_span_context().span_id}
