"""One loan decision is one trace, whole, across every process it touches (the suite's own OTLP receiver).

The system runs with tracing on (tests/conftest.py points every process at
`otlp`); these tests read back what the processes exported.
"""

from __future__ import annotations

import os

from tests.actors import requested_loan
from tests.harness import wait_for
from tests.otlp import OTLPReceiver, ReceivedSpan

FORGED_TRACE_ID = "ab" * 16
FORGED_TRACEPARENT = f"00-{FORGED_TRACE_ID}-{'cd' * 8}-01"


def _request_span(otlp: OTLPReceiver, correlation_id: str) -> ReceivedSpan:
    """The gateway's span of the request whose reply carried `correlation_id`."""

    def found() -> list[ReceivedSpan]:
        return [
            span
            for span in otlp.spans()
            if (span.service, span.kind) == ("gateway", "SERVER")
            and span.attributes.get("lms.correlation_id") == correlation_id
        ]

    (span,) = wait_for(found, timeout=20, message=f"the gateway's span of request {correlation_id}")
    return span


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_span_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def _one(spans: list[ReceivedSpan], **wanted) -> ReceivedSpan:
    matching = [span for span in spans if all(getattr(span, key) == value for key, value in wanted.items())]
    assert len(matching) == 1, (wanted, matching)
    return matching[0]


def test_a_loan_decision_is_one_trace_from_the_gateway_to_the_email(system, admin, otlp, smtp):
    customer, _, loan = requested_loan(system.gateway, admin, principal="90000", months=12)
    loan_id = loan["id"]

    # A client's trace context is not trusted at the public edge: the decision starts a trace of its own.
    decided = admin.api.put(
        f"/api/loan/approve-reject-loan/{loan_id}", {"status": "APPROVED"}, headers={"traceparent": FORGED_TRACEPARENT}
    )
    assert decided.status == 200, decided.body
    root = _request_span(otlp, decided.headers["X-Correlation-ID"])
    assert root.parent_span_id == ""
    assert root.trace_id != FORGED_TRACE_ID

    # The customer's email of the decision, and its delivery's span in the same trace.
    def email_notification() -> list[dict]:
        reply = customer.api.get("/api/notifications/?kind=loan.approved")
        assert reply.status == 200, reply.body
        return [item for item in reply.data["results"] if (item["channel"], item["status"]) == ("email", "sent")]

    (email,) = wait_for(email_notification, timeout=30, message="the customer's loan.approved email sent")
    assert wait_for(lambda: smtp.messages_to(customer.email), timeout=10, message="the email at the SMTP server")

    def send_span() -> list[ReceivedSpan]:
        return [
            span
            for span in otlp.spans(trace_id=root.trace_id)
            if span.name == "notification.send email" and span.attributes.get("lms.notification.id") == email["id"]
        ]

    (send,) = wait_for(send_span, timeout=20, message="the email delivery's span in the decision's trace")

    # Parent links intact: one root (the gateway's request), every other span's parent received in the trace
    # (a parent ends, and so is exported, after its children: wait for the last ones).
    def whole_trace() -> list[ReceivedSpan]:
        trace = otlp.spans(trace_id=root.trace_id)
        received = {span.span_id for span in trace}
        return trace if all(span.parent_span_id in received for span in trace if span.parent_span_id) else []

    trace = wait_for(whole_trace, timeout=20, message="every parent of the trace's spans")
    by_id = {span.span_id: span for span in trace}
    assert [span for span in trace if not span.parent_span_id] == [root]

    # gateway -> its forwarding span -> loan_service's request, which reads and writes its database.
    forward = _one(trace, name="gateway.forward loan", parent_span_id=root.span_id)
    assert (forward.service, forward.kind, forward.attributes["gateway.upstream"]) == ("gateway", "CLIENT", "loan")
    assert forward.attributes["http.response.status_code"] == 200
    loan_request = _one(trace, service="loan_service", kind="SERVER", parent_span_id=forward.span_id)
    assert loan_request.process == "web"
    assert loan_request.attributes["lms.correlation_id"] == decided.headers["X-Correlation-ID"]
    queries = [span for span in trace if span.kind == "CLIENT" and "db.system" in span.attributes]
    loan_queries = [span for span in queries if span.service == "loan_service" and span.process == "web"]
    assert loan_queries, "no database span of loan_service"
    assert all(loan_request in _ancestors(span, by_id) for span in loan_queries)
    on_postgresql = os.environ.get("E2E_LOAN_SERVICE_DATABASE_URL", "").startswith("postgres")
    assert {span.attributes["db.system"] for span in loan_queries} == {"postgresql" if on_postgresql else "sqlite"}
    statements = [
        span.attributes.get("db.statement") or span.attributes.get("db.query.text", "") for span in loan_queries
    ]
    assert any(statement.startswith("UPDATE") for statement in statements), statements
    if on_postgresql:  # the decision's row lock (SQLite locks the whole database and has no FOR UPDATE)
        assert any(statement.endswith("FOR UPDATE") for statement in statements), statements

    # The notification worker delivered the email below its consumption of the decision's event, which loan_service's
    # relay sent from the outbox as a child of the request that wrote it.
    send_chain = _ancestors(send, by_id)
    assert (send.service, send.process, send.kind, send.error) == ("notification_service", "worker", "CLIENT", False)
    assert send.attributes["lms.notification.channel"] == "email"
    delivery = send_chain[0]
    assert (delivery.service, delivery.kind, delivery.name) == (
        "notification_service",
        "CONSUMER",
        "run/notifications.deliver",
    )
    (consumed,) = [span for span in send_chain if span.name == "run/notifications.consume_event"]
    assert (consumed.service, consumed.process, consumed.kind) == ("notification_service", "worker", "CONSUMER")
    published = by_id[consumed.parent_span_id]
    assert (published.service, published.process, published.kind) == ("loan_service", "relay", "PRODUCER")
    assert published.attributes["celery.task_name"] == "notifications.consume_event"
    assert loan_request in _ancestors(published, by_id)

    # Five processes: the gateway, loan_service's web and relay processes, and the worker's (one or more).
    processes = {(span.service, span.process, span.pid) for span in trace}
    assert {(service, process) for service, process, _ in processes} >= {
        ("gateway", "web"),
        ("loan_service", "web"),
        ("loan_service", "relay"),
        ("notification_service", "worker"),
    }
    assert len({pid for _, _, pid in processes}) >= 4

    # Logs carry the trace: the gateway's access line of the decision names it.
    correlation_id = decided.headers["X-Correlation-ID"]
    access = [
        record
        for record in system.log_records("gateway")
        if record.get("message") == "request" and record.get("correlation_id") == correlation_id
    ]
    assert [record["trace_id"] for record in access] == [root.trace_id]
