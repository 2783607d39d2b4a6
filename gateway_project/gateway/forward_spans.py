"""The span of one forwarding attempt (gateway.proxy), whose context the upstream receives in `traceparent`.

Called only while common.tracing.ENABLED: with tracing off nothing here runs.
"""

from __future__ import annotations

from collections.abc import Callable

from common import tracing
from gateway.connections import Answer
from gateway.upstreams import Instance

TRACER_NAME = "lms.gateway"


def traced_attempt(
    send: Callable[..., Answer],
    instance: Instance,
    *,
    upstream: str,
    attempt: int,
    headers: dict[str, str],
    until: float,
) -> Answer:
    """`send(instance, ...)` inside a client span `gateway.forward <upstream>`, with that span as the parent upstream.

    The span has the upstream, the instance, the attempt (1 the first), the
    instance's breaker state as the attempt starts and the answer's status; a
    failed attempt's exception is recorded on it and marks it an error.
    """
    from opentelemetry.trace import SpanKind, Status, StatusCode

    attributes = {
        "gateway.upstream": upstream,
        "gateway.instance": instance.url,
        "gateway.attempt": attempt,
        "gateway.breaker_state": instance.breaker.state,
    }
    tracer = tracing.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"gateway.forward {upstream}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        carried = dict(headers)
        tracing.inject_trace_context(carried)  # traceparent / tracestate (/ baggage) of this span, one per attempt
        answer = send(instance, until=until, headers=carried)
        span.set_attribute("http.response.status_code", answer.status)
        if answer.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return answer
