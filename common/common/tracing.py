"""OpenTelemetry tracing: off, with nothing of OpenTelemetry imported, unless an OTLP endpoint is configured.

`configure_tracing(service)` runs once per process (wsgi/asgi, the Celery
worker and beat, the outbox relay). With `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set (and `OTEL_SDK_DISABLED` not true) it
installs a TracerProvider exporting in batches over OTLP/HTTP (the SDK reads
the other `OTEL_*` variables itself) and instruments Django, psycopg, SQLite,
Redis and Celery. Each process's resource names its service (`service.name`),
its role (`lms.process`: web, relay, worker, beat) and its pid, so a trace
shows which process of a service did what. Hot paths check `ENABLED`, so with
tracing off they do no span work.

A client's W3C trace context (`traceparent`, `tracestate`, `baggage`) is
continued only where `settings.OTEL_TRUST_INCOMING_TRACEPARENT` is true (read
from the variable of that name): off at the gateway (every request a new trace,
so a client cannot graft itself onto internal traces), on in the services
behind it (common.django_settings.web_basics; their caller is the gateway).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

ENABLED = False  # read on every request and log line: True only between configure_tracing and shutdown_tracing
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")  # what W3C trace context and baggage travel in
UNTRUSTED_MIDDLEWARE = "common.tracing.UntrustedTraceContextMiddleware"
# Polled every few seconds by the gateway, Prometheus and the probes: spans of no interest.
DEFAULT_EXCLUDED_URLS = r"/health(/live|/ready)?/?$,/metrics/?$"

_META_KEYS = tuple(f"HTTP_{name.upper()}" for name in TRACE_HEADERS)
_lock = threading.Lock()


@dataclass
class _Tracing:
    provider: Any  # opentelemetry.sdk.trace.TracerProvider
    instrumentors: list[Any]


_active: _Tracing | None = None


def tracing_wanted(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether this process traces: an OTLP endpoint is set and OTEL_SDK_DISABLED is not `true`."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    endpoints = (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""), environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""))
    return any(endpoint.strip() for endpoint in endpoints)


def configure_tracing(service_name: str, *, role: str = "web", exporter: Any = None) -> bool:
    """Start tracing for this process if it is wanted (see `tracing_wanted`); True when tracing is on.

    Safe to call again: a second call changes nothing. `role` is what this
    process of the service does (web, relay, worker, beat). `exporter` replaces
    the OTLP/HTTP exporter (tests pass an InMemorySpanExporter).
    OTEL_SERVICE_NAME, when set, names the process instead of `service_name`.
    """
    global ENABLED, _active
    with _lock:
        if _active is None and tracing_wanted():
            _active = _start(os.environ.get("OTEL_SERVICE_NAME") or service_name, role, exporter)
            ENABLED = True
        return _active is not None


def configure_tracing_in_celery(service_name: str) -> None:
    """Trace this Celery app's worker and beat: `configure_tracing` in each pool process as it starts, and in beat.

    In the pool processes rather than the parent, so each has its own exporter
    thread and connections; the parent imports the SDK once beforehand, so a
    pool process starts well within Celery's few seconds.
    """
    from celery import signals

    def start_worker(**_) -> None:
        configure_tracing(service_name, role="worker")

    def start_beat(**_) -> None:
        configure_tracing(service_name, role="beat")

    signals.worker_init.connect(_import_sdk, weak=False)
    signals.worker_process_init.connect(start_worker, weak=False)
    signals.beat_init.connect(start_beat, weak=False)


def shutdown_tracing() -> None:
    """Export what is queued, remove the instrumentation and turn tracing off (tests; a no-op when off)."""
    global ENABLED, _active
    with _lock:
        if _active is None:
            return
        ENABLED = False
        for instrumentor in reversed(_active.instrumentors):
            instrumentor.uninstrument()
        _remove_untrusted_middleware()
        _active.provider.shutdown()
        _active = None


def force_flush() -> None:
    """Export every finished span now rather than with the next batch (tests; a no-op when off)."""
    if _active is not None:
        _active.provider.force_flush()


def get_tracer(name: str) -> Any:
    """A tracer of this process's provider; only while ENABLED."""
    if _active is None:
        raise RuntimeError("tracing is off: check common.tracing.ENABLED before making spans")
    return _active.provider.get_tracer(name)


def current_trace_ids() -> tuple[str, str] | None:
    """The hex trace id and span id of the span in progress; None outside one or with tracing off."""
    if not ENABLED:
        return None
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def current_traceparent() -> str | None:
    """The W3C traceparent of the span in progress, to carry it where headers do not go (the outbox); else None."""
    if not ENABLED:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def inject_trace_context(headers: dict[str, str]) -> None:
    """Add the span in progress to outgoing `headers` as `traceparent` (and `tracestate`); a no-op with tracing off."""
    if ENABLED:
        from opentelemetry.propagate import inject

        inject(headers)


@contextmanager
def span(name: str, *, kind: str = "INTERNAL", attributes: dict[str, Any] | None = None) -> Iterator[None]:
    """A span of this process's own around the block (e.g. a notification's delivery); nothing with tracing off.

    `kind` names an `opentelemetry.trace.SpanKind` (CLIENT for a call to
    another system). An exception leaving the block is recorded on the span
    and marks it as an error, then propagates.
    """
    if not ENABLED:
        yield
        return
    from opentelemetry.trace import SpanKind

    with get_tracer("lms").start_as_current_span(name, kind=SpanKind[kind], attributes=attributes):
        yield


def annotate_current_span(attributes: dict[str, Any]) -> None:
    """Add `attributes` to the span in progress (e.g. a request's correlation id); nothing with tracing off."""
    if ENABLED:
        from opentelemetry.trace import get_current_span

        get_current_span().set_attributes(attributes)


@contextmanager
def parent_span(traceparent: str | None) -> Iterator[None]:
    """Inside the block the span `traceparent` names is the parent of new spans (e.g. an outbox row's, as it is sent).

    Nothing happens with tracing off or without a traceparent.
    """
    if not ENABLED or not traceparent:
        yield
        return
    from opentelemetry import context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    token = context.attach(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def untraced() -> Iterator[None]:
    """Inside the block instrumented libraries make no spans (the outbox relay's polling: a query every 0.2 s).

    A `parent_span` inside it traces again, in the trace it names.
    """
    if not ENABLED:
        yield
        return
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield


class UntrustedTraceContextMiddleware:
    """Outermost while tracing with OTEL_TRUST_INCOMING_TRACEPARENT off: drops the client's trace context.

    Before the OpenTelemetry middleware reads it, so the request starts a new
    trace, and before gateway.proxy copies headers, so it goes nowhere either.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        for key in _META_KEYS:
            request.META.pop(key, None)
        return self.get_response(request)


def _import_sdk(**_) -> None:
    if tracing_wanted():
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.instrumentation.celery
        import opentelemetry.instrumentation.django
        import opentelemetry.instrumentation.psycopg
        import opentelemetry.instrumentation.redis
        import opentelemetry.instrumentation.sqlite3
        import opentelemetry.sdk.trace  # noqa: F401


def _start(service_name: str, role: str, exporter: Any) -> _Tracing:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout and compression from OTEL_EXPORTER_OTLP_*
    resource = Resource.create({SERVICE_NAME: service_name, "lms.process": role, "process.pid": os.getpid()})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))  # re-starts its thread in forked workers
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)  # for libraries that trace on their own; settable once per process
    return _Tracing(provider, _instrument(provider))


def _instrument(provider: Any) -> list[Any]:
    from django.conf import settings
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    excluded = os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    DjangoInstrumentor().instrument(tracer_provider=provider, excluded_urls=excluded)
    if not getattr(settings, "OTEL_TRUST_INCOMING_TRACEPARENT", False):
        # In place, as the instrumentor inserts its own (it made MIDDLEWARE a list), so both come out again.
        settings.MIDDLEWARE.insert(0, UNTRUSTED_MIDDLEWARE)
    instrumentors = [
        DjangoInstrumentor(),
        PsycopgInstrumentor(),
        SQLite3Instrumentor(),  # the embedded default's databases
        RedisInstrumentor(),
        CeleryInstrumentor(),
    ]
    for instrumentor in instrumentors[1:]:
        instrumentor.instrument(tracer_provider=provider)
    return instrumentors


def _remove_untrusted_middleware() -> None:
    from django.conf import settings

    if UNTRUSTED_MIDDLEWARE in settings.MIDDLEWARE:
        settings.MIDDLEWARE.remove(UNTRUSTED_MIDDLEWARE)
