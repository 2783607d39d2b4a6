"""Correlation ids across processes, health aggregation and metrics, seen from outside."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from tests.actors import approved_agent, sign_up
from tests.client import Client
from tests.deploy.test_dashboards import dashboard_metric_names
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


def _exercise_the_gateways_labelled_counters(system, admin) -> None:
    """One of each event the gateway's labelled counters count: their series exist only once something happened."""
    gateway = system.gateway
    gateway.get("/api/user/.well-known/jwks.json")  # a forwarded request
    assert gateway.as_token("not-a-token").get("/api/loan/list-loans-admin-agent").status == 401  # a token refused
    owner = approved_agent(gateway, admin)
    made = admin.api.post(
        "/api/user/api-keys", {"name": f"metrics-{owner.id}", "owner_id": owner.id, "scopes": ["loans:read"]}
    )
    assert made.status == 201, made.body
    with_key = Client(gateway.base_url, headers={"X-API-Key": made.data["key"]})
    assert with_key.get("/api/loan/list-loans-admin-agent").status == 200
    email = f"limited-{uuid.uuid4().hex[:10]}@example.com"
    statuses = [gateway.post("/api/user/login", {"email": email, "password": "wrong"}).status for _ in range(12)]
    assert statuses[-1] == 429, statuses  # the gateway's per-email login limit: 10 a minute


def test_every_metric_the_alerts_and_dashboards_query_is_on_some_process_metrics(system, admin):
    _exercise_the_gateways_labelled_counters(system, admin)

    exposed = {"up"}  # Prometheus' own, per scrape target
    for label in ("gateway", "user", "loan", "notification"):
        client = system.gateway if label == "gateway" else system.service(label)
        reply = client.get("/metrics", headers={"Accept": "text/plain"})
        assert reply.status == 200, label
        for family in text_string_to_metric_families(reply.body.decode()):
            # A family declared with no sample yet (e.g. no failed read) still exists; its samples' names too.
            exposed |= {family.name, f"{family.name}_total"} if family.type == "counter" else {family.name}
            exposed |= {sample.name for sample in family.samples}

    queried = alert_metric_names() | dashboard_metric_names()
    assert queried <= exposed, f"queried but not exposed: {sorted(queried - exposed)}"
