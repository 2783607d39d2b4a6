"""Failure drills on the running system: each ends with nothing lost and nothing duplicated.

The drills stop and start real processes (a service, the broker, the worker,
database connections) and always bring them back, also when they fail, so
the tests after them find a whole system.
"""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from tests.actors import approved_agent, sign_up
from tests.harness import wait_for


@pytest.fixture(scope="module")
def people(system, admin):
    return {
        "admin": admin,
        "customer": sign_up(system.gateway, "customer"),
        "agent": approved_agent(system.gateway, admin),
    }


@contextlib.contextmanager
def stopped(system, label: str, *, kill: bool = False):
    """`label`'s process is down inside the block and up (healthy) again after it, whatever happens."""
    system.stop_process(label, kill=kill)
    try:
        yield
    finally:
        system.start_process(label)


def loans_of(admin, agent) -> list[dict]:
    reply = admin.api.get(f"/api/loan/list-loans-admin-agent?agent_id={agent.id}&page_size=100")
    assert reply.status == 200, reply.body
    return reply.data["results"]


def request_loan(people, principal: str = "25000.00", months: int = 12):
    body = {"customer_id": people["customer"].id, "principal": principal, "months": months}
    return people["agent"].api.post("/api/loan/customer-loan", body)


def test_user_service_down_means_503_and_no_loan(system, people):
    before = len(loans_of(people["admin"], people["agent"]))

    with stopped(system, "user"):
        reply = request_loan(people)

        assert reply.status == 503, reply.body
        assert reply.json["success"] is False
        assert reply.elapsed < 5
        assert len(loans_of(people["admin"], people["agent"])) == before

    assert request_loan(people).status == 201
    assert len(loans_of(people["admin"], people["agent"])) == before + 1


def test_loan_service_down_fails_fast_at_the_gateway_then_recovers(system, people):
    customer = people["customer"]

    before = len(loans_of(people["admin"], people["agent"]))

    with stopped(system, "loan"):
        replies = [customer.api.get("/api/loan/list-loans-customer") for _ in range(5)]
        write = request_loan(people)

        assert {reply.status for reply in replies} == {503}
        assert all(reply.json["success"] is False for reply in replies)
        assert max(reply.elapsed for reply in replies) < 2
        assert write.status == 503, write.body

    recovered = wait_for(
        lambda: customer.api.get("/api/loan/list-loans-customer").status == 200,
        timeout=30,
        message="the gateway to route to loan_service again",
    )
    assert recovered
    assert len(loans_of(people["admin"], people["agent"])) == before  # the refused write left nothing behind


def test_broker_down_approvals_succeed_and_notifications_follow(system, people, broker):
    if broker is None:
        pytest.skip("needs a broker server (redis-server) the suite can stop")
    admin, customer = people["admin"], people["customer"]
    loans = [request_loan(people, months=6 + i).data for i in range(3)]
    wait_for(
        lambda: len(customer.api.get("/api/notifications/?kind=loan.created&page_size=100").data["results"]) >= 3,
        timeout=30,
        message="the loan.created notices before the drill",
    )

    broker.stop()
    try:
        decisions = [
            admin.api.put(f"/api/loan/approve-reject-loan/{loan['id']}", {"status": "APPROVED"}) for loan in loans
        ]
        assert [reply.status for reply in decisions] == [200, 200, 200]
        time.sleep(1)
        assert _notices(customer, "loan.approved", loans) == {}  # nothing can be sent while the broker is away
    finally:
        broker.start()

    notices = wait_for(
        lambda: (found := _notices(customer, "loan.approved", loans)) and len(found) == 3 and found,
        timeout=60,
        message="the approval notices after the broker came back",
    )
    assert all(channels == ["email", "in_app"] for channels in notices.values()), notices


def _notices(customer, kind: str, loans) -> dict[int, list[str]]:
    """loan id → sorted channels of the customer's `kind` notifications that mention it."""
    results = customer.api.get(f"/api/notifications/?kind={kind}&page_size=100").data["results"]
    found: dict[int, list[str]] = {}
    for loan in loans:
        channels = sorted(n["channel"] for n in results if f"#{loan['id']}" in n["subject"] + n["body"])
        if channels:
            found[loan["id"]] = channels
    return found


def test_worker_killed_mid_delivery_sends_exactly_once(system, people, smtp, broker):
    if broker is None:
        pytest.skip("the server-less broker has no redelivery of unacknowledged tasks")
    admin, customer = people["admin"], people["customer"]
    subject = f"Drill {time.monotonic_ns()}"
    smtp.delay = 4.0  # the email delivery hangs in SMTP while the worker is killed
    started_before = smtp.sessions_started
    try:
        queued = admin.api.post(
            "/api/notifications/send",
            {"user_id": customer.id, "channel": "email", "subject": subject, "body": "mid-delivery"},
        )
        assert queued.status == 202, queued.body
        wait_for(lambda: smtp.sessions_started > started_before, timeout=20, message="the worker to start talking SMTP")
        with stopped(system, "notification-worker", kill=True):
            smtp.delay = 0.0
            # Redis hands an unacknowledged task to the next worker that starts once its visibility
            # timeout has passed (the suite sets it to 8 s; production keeps it above the longest retry).
            time.sleep(float(system.extra_env["CELERY_VISIBILITY_TIMEOUT"]) + 1)
    finally:
        smtp.delay = 0.0

    notification_id = queued.data["id"]
    sent = wait_for(
        lambda: (reply := admin.api.get(f"/api/notifications/{notification_id}")).data["status"] == "sent" and reply,
        timeout=60,
        message="the redelivered notification to be sent",
    )
    assert sent.data["status"] == "sent"
    mine = customer.api.get("/api/notifications/?page_size=100").data["results"]
    assert [n["id"] for n in mine if n["subject"] == subject] == [notification_id]
    # The killed worker's SMTP session never got its 250, so the mailbox holds the redelivered copy only.
    assert [m["Subject"] for m in smtp.messages_to(customer.email)].count(subject) == 1


@contextlib.contextmanager
def database_refusing_connections(url: str):
    """Every connection to the database behind `url` dropped, and new ones refused, inside the block."""
    import psycopg

    server, database = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin_connection:
        admin_connection.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            admin_connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [database]
            )
            yield
        finally:
            admin_connection.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


@pytest.mark.skipif(not os.environ.get("E2E_LOAN_SERVICE_DATABASE_URL"), reason="needs PostgreSQL")
def test_dropped_database_connections_give_a_clear_503_and_recover_without_restart(system, people):
    customer, admin, agent = people["customer"], people["admin"], people["agent"]
    before = len(loans_of(admin, agent))

    with database_refusing_connections(os.environ["E2E_LOAN_SERVICE_DATABASE_URL"]):
        read = customer.api.get("/api/loan/list-loans-customer")
        write = request_loan(people)

    assert (read.status, write.status) == (503, 503), (read.body, write.body)
    assert read.json["success"] is False  # the envelope, never an HTML page
    assert write.json["success"] is False
    assert max(read.elapsed, write.elapsed) < 5
    wait_for(
        lambda: customer.api.get("/api/loan/list-loans-customer").status == 200,
        timeout=30,
        message="loan_service to reconnect without a restart",
    )
    assert len(loans_of(admin, agent)) == before  # the refused write left nothing behind
    created = request_loan(people)  # writes work again, and the relay still publishes
    assert created.status == 201, created.body
    wait_for(
        lambda: _notices(customer, "loan.created", [created.data]) == {created.data["id"]: ["email", "in_app"]},
        timeout=30,
        message="the new loan's event to flow after the reconnect",
    )
