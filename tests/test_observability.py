"""Correlation ids across processes, health aggregation and metrics, seen from outside."""

from __future__ import annotations

import uuid

from tests.actors import approved_agent, sign_up
from tests.deploy.test_observability_rules import alert_metric_names
from tests.harness import wait_for


def test_client_correlation_id_follows_the_request_into_every_process(system, admin, smtp):
    customer = sign_up(system.gateway, "customer")
    agent = approved_agent(system.gateway, admin)
    correlation_id = f"e2e-{uuid.uuid4().hex}"

    reply = agent.api.post(
        "/api/loan/customer-loan",
        {"customer_id": customer.id, "principal": "30000.00", "months": 10},
        headers={"X-Correlation-ID": correlation_id},
    )

    assert reply.status == 201, reply.body
    assert reply.headers["X-Correlation-ID"] == correlation_id

    def processes_that_logged_it() -> set[str]:
        return {record["_process"] for record in system.log_records() if record.get("correlation_id") == correlation_id}

    # gateway → loan_service → user_service (customer check); the event → the notification worker.
    seen = wait_for(
        lambda: (found := processes_that_logged_it()) >= {"gateway", "loan", "user", "notification-worker"} and found,
        timeout=30,
        message=f"log lines with correlation id {correlation_id} from every process",
    )
    assert seen >= {"gateway", "loan", "user", "notification-worker"}
    # It travelled on the event (outbox → broker → worker) onto the notification and its email.
    emails = wait_for(
        lambda: [m for m in smtp.messages_to(customer.email) if m["X-Correlation-ID"] == correlation_id],
        timeout=30,
        message="the loan.created email carrying the correlation id",
    )
    assert len(emails) == 1


def test_gateway_health_lists_every_service(system):
    reply = system.gateway.get("/health")

    assert reply.status == 200, reply.body
    assert reply.json["status"] == "ok"
    assert set(reply.json["services"]) == {"user", "loan", "notification"}
    assert all(service["status"] == "up" for service in reply.json["services"].values())


def test_metrics_are_prometheus_text(system):
    system.gateway.get("/api/user/.well-known/jwks.json")

    reply = system.gateway.get("/metrics", headers={"Accept": "text/plain"})

    assert reply.status == 200
    assert b"# TYPE" in reply.body


def test_openapi_document_covers_every_public_path(system):
    reply = system.gateway.get("/api/openapi.json")

    assert reply.status == 200
    paths = reply.json["paths"]
    for expected in (
        "/api/user/signup",
        "/api/user/login",
        "/api/loan/customer-loan",
        "/api/loan/quote",
        "/api/notifications/send-batch",
    ):
        assert any(path.rstrip("/") == expected for path in paths), expected
    assert not any("/internal/" in path for path in paths)


def test_every_metric_the_alerts_query_is_on_some_process_metrics(system):
    system.gateway.get("/api/user/.well-known/jwks.json")  # at least one forwarded request, so its series exist

    exposed: set[str] = set()
    for label in ("gateway", "user", "loan", "notification"):
        client = system.gateway if label == "gateway" else system.service(label)
        reply = client.get("/metrics", headers={"Accept": "text/plain"})
        assert reply.status == 200, label
        lines = [line for line in reply.body.decode().splitlines() if line and not line.startswith("#")]
        exposed |= {line.split("{")[0].split(" ")[0] for line in lines}

    assert alert_metric_names() <= exposed, f"queried but not exposed: {sorted(alert_metric_names() - exposed)}"
