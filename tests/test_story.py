"""The whole product story, through the gateway only, against the real processes."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from tests.actors import approved_agent, sign_in, sign_up
from tests.harness import wait_for

CENT = Decimal("0.01")


def expected_emi(principal: str, annual_rate: str, months: int) -> Decimal:
    """API.md's formula, written out independently of the service's code."""
    p, r = Decimal(principal), Decimal(annual_rate) / 1200
    if r == 0:
        return (p / months).quantize(CENT, ROUND_HALF_UP)
    growth = (1 + r) ** months
    return (p * r * growth / (growth - 1)).quantize(CENT, ROUND_HALF_UP)


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def notifications_of(actor, kind: str) -> list[dict]:
    reply = actor.api.get(f"/api/notifications/?kind={kind}")
    assert reply.status == 200, reply.body
    return reply.data["results"]


def test_customer_gets_a_loan_requested_by_an_approved_agent(system, admin, smtp):
    gateway = system.gateway
    customer = sign_up(gateway, "customer", first_name="Cara", last_name="Diaz")
    agent = sign_up(gateway, "agent", first_name="Abe", last_name="Ng")
    loan_request = {"customer_id": customer.id, "principal": "200000.00", "months": 60}

    # An agent waiting for approval can sign in but not request loans.
    assert agent.api.post("/api/loan/customer-loan", loan_request).status == 403
    waiting = admin.api.get("/api/user/list-approvals?page_size=100")
    assert agent.id in [user["id"] for user in waiting.data["results"]]

    # The admin approves the agent; that ends the agent's session, and the next sign-in carries the approval.
    assert admin.api.put(f"/api/user/approve-delete/{agent.id}", {"action": "approve"}).status == 200
    assert gateway.post("/api/user/token/refresh", {"refresh": agent.refresh}).status == 401
    agent = sign_in(gateway, agent.email)

    created = agent.api.post("/api/loan/customer-loan", loan_request)
    assert created.status == 201, created.body
    loan = created.data
    assert (loan["status"], loan["customer_id"], loan["agent_id"]) == ("NEW", customer.id, agent.id)
    assert (loan["interest"], loan["emi"], loan["amount"]) == ("8.45", "4098.49", "245909.22")

    edited = agent.api.put(f"/api/loan/edit-loan/{loan['id']}", {"months": 120})
    assert edited.status == 200, edited.body
    assert edited.data["months"] == 120
    assert Decimal(edited.data["emi"]) == expected_emi("200000.00", edited.data["interest"], 120)

    approved = admin.api.put(f"/api/loan/approve-reject-loan/{loan['id']}", {"status": "APPROVED"})
    assert approved.status == 200, approved.body
    start = date.fromisoformat(approved.data["start_date"])
    assert approved.data["status"] == "APPROVED"
    assert start == datetime.now(UTC).date()
    assert date.fromisoformat(approved.data["end_date"]) == add_months(start, 120)
    assert approved.data["decided_by"] == admin.id

    # The customer sees the loan and its schedule.
    mine = customer.api.get("/api/loan/list-loans-customer")
    assert [item["id"] for item in mine.data["results"]] == [loan["id"]]
    assert customer.api.get(f"/api/loan/{loan['id']}").data["status"] == "APPROVED"
    schedule = customer.api.get(f"/api/loan/{loan['id']}/schedule")
    assert schedule.status == 200, schedule.body
    rows = schedule.data
    assert len(rows) == 120
    assert rows[-1]["balance"] == "0.00"
    assert all(row["due_date"] for row in rows)
    assert sum(Decimal(row["payment"]) for row in rows) == Decimal(approved.data["amount"])
    assert sum(Decimal(row["principal"]) for row in rows) == Decimal("200000.00")

    # The history says what changed and who did it.
    history = admin.api.get(f"/api/loan/{loan['id']}/history")
    assert history.status == 200, history.body
    steps = [(entry["change"], entry["changed_by"]) for entry in history.data]
    assert steps == [("created", agent.id), ("updated", agent.id), ("approved", admin.id)]
    assert [str(value) for value in history.data[1]["fields"]["months"]] == ["60", "120"]

    # The customer is told, in the app and by a real email.
    def sent_approvals() -> list[dict]:
        return [n for n in notifications_of(customer, "loan.approved") if n["status"] == "sent"]

    # Each channel is delivered on its own: wait for both, not for whichever comes first.
    approved_for_customer = wait_for(
        lambda: (found := sent_approvals()) and {n["channel"] for n in found} >= {"in_app", "email"} and found,
        timeout=30,
        message="the customer's loan.approved notifications in the app and by email",
    )
    assert {n["channel"] for n in approved_for_customer} >= {"in_app", "email"}
    emails = wait_for(lambda: smtp.messages_to(customer.email), timeout=30, message="an email to the customer")
    assert any(str(loan["id"]) in (message.get("Subject") or "") for message in emails)
    # The agent hears of their approval and of the decision.
    wait_for(lambda: notifications_of(agent, "agent.approved"), timeout=30, message="the agent's approval notice")
    wait_for(lambda: notifications_of(agent, "loan.approved"), timeout=30, message="the agent's decision notice")

    # Reading a notification marks it read, and the unread filter drops it.
    first = approved_for_customer[0]
    assert customer.api.post(f"/api/notifications/{first['id']}/read").status == 200
    unread = customer.api.get("/api/notifications/?unread=true&page_size=100")
    assert first["id"] not in [n["id"] for n in unread.data["results"]]


def test_rejected_loan_tells_customer_and_agent_and_cannot_change(system, admin):
    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    loan = agent.api.post(
        "/api/loan/customer-loan", {"customer_id": customer.id, "principal": "10000.00", "months": 12}
    ).data
    assert (loan["emi"], loan["amount"]) == ("871.97", "10463.59")

    rejected = admin.api.put(f"/api/loan/approve-reject-loan/{loan['id']}", {"status": "REJECTED", "note": "income"})
    again = admin.api.put(f"/api/loan/approve-reject-loan/{loan['id']}", {"status": "APPROVED"})
    edit = agent.api.put(f"/api/loan/edit-loan/{loan['id']}", {"months": 24})

    assert rejected.status == 200
    assert rejected.data["decision_note"] == "income"
    assert again.status == 409
    assert edit.status == 409
    assert again.json["success"] is False
    assert customer.api.get(f"/api/loan/{loan['id']}").data["status"] == "REJECTED"
    wait_for(lambda: notifications_of(customer, "loan.rejected"), timeout=30, message="customer's rejection notice")
    wait_for(lambda: notifications_of(agent, "loan.rejected"), timeout=30, message="agent's rejection notice")
