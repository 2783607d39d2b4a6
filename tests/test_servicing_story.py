"""A loan's life after approval, through the gateway: disbursed, repaid for a year, closed; late, fined, told.

A year cannot pass in a test, so the one step not taken through the API is the operator's: the
loan's approval is moved back in its database (`manage.py shell`) before it is disbursed on that
day, and the daily job is run for chosen days with `manage.py run_daily --as-of`, as operators do.
"""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import manage_all
from tests.actors import approved_agent, sign_up
from tests.harness import wait_for
from tests.test_story import add_months, notifications_of

LOAN_SERVICE = next(service for service in manage_all.SERVICES if service.name == "loan_service")


def loan_manage(system, *args: str) -> str:
    env = manage_all.service_env(LOAN_SERVICE, base_port=system.base_port, var=system.var, extra=system.extra_env)
    done = subprocess.run(
        [manage_all.python(), "manage.py", *args], cwd=LOAN_SERVICE.folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def approved_loan_back_dated(system, admin, agent, customer, *, months: int, approved_on: date) -> dict:
    created = agent.api.post(
        "/api/loan/customer-loan", {"customer_id": customer.id, "principal": "10000.00", "months": months}
    )
    assert created.status == 201, created.body
    loan_id = created.data["id"]
    assert admin.api.put(f"/api/loan/approve-reject-loan/{loan_id}", {"status": "APPROVED"}).status == 200
    loan_manage(
        system,
        "shell",
        "-c",
        "from datetime import datetime, UTC; from loans.models import Loan; "
        f"Loan.objects.filter(pk={loan_id}).update(decided_at=datetime({approved_on.year}, {approved_on.month}, "
        f"{approved_on.day}, 9, tzinfo=UTC))",
    )
    return created.data


def all_notifications(actor, kind: str) -> list[dict]:
    reply = actor.api.get(f"/api/notifications/?kind={kind}&page_size=100")
    assert reply.status == 200, reply.body
    return reply.data["results"]


def key() -> dict:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_a_year_of_repayments_closes_the_loan_exactly(system, admin):
    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    today = datetime.now(UTC).date()
    start = add_months(today, -12)
    loan = approved_loan_back_dated(system, admin, agent, customer, months=12, approved_on=start)
    path = f"/api/loan/{loan['id']}"

    assert admin.api.post(f"{path}/disburse", {"date": start.isoformat()}).status == 400  # no Idempotency-Key
    disbursed = admin.api.post(f"{path}/disburse", {"date": start.isoformat()}, headers=key())
    assert disbursed.status == 200, disbursed.body
    assert disbursed.data["status"] == "DISBURSED"
    assert disbursed.data["total_outstanding"] == "10463.59"
    rows = customer.api.get(f"{path}/instalments").data
    assert [row["due_date"] for row in rows] == [add_months(start, k).isoformat() for k in range(1, 13)]

    # Eleven instalments on their due dates; one POST sent twice with its key is taken once.
    for row in rows[:11]:
        headers = key()
        body = {"amount": str(Decimal(row["principal_due"]) + Decimal(row["interest_due"])), "date": row["due_date"]}
        paid = agent.api.post(f"{path}/repayments", body, headers=headers)
        assert paid.status == 201, paid.body
        if row["number"] == 3:
            again = agent.api.post(f"{path}/repayments", body, headers=headers)
            assert (again.status, again.json) == (201, paid.json)
            assert again.headers.get("Idempotent-Replayed") == "true"

    # Month 12: the payoff on the last due date is the last instalment, and it closes the loan.
    payoff = customer.api.get(f"{path}/payoff?date={rows[11]['due_date']}")
    assert payoff.status == 200, payoff.body
    assert Decimal(payoff.data["payoff"]) == Decimal(rows[11]["principal_due"]) + Decimal(rows[11]["interest_due"])
    closed = agent.api.post(
        f"{path}/repayments", {"amount": payoff.data["payoff"], "date": rows[11]["due_date"]}, headers=key()
    )
    assert closed.status == 201, closed.body
    assert closed.data["loan"]["status"] == "CLOSED"
    assert closed.data["loan"]["total_outstanding"] == "0.00"

    repayments = customer.api.get(f"{path}/repayments?page_size=100").data
    assert repayments["count"] == 12
    assert sum(Decimal(tx["amount"]) for tx in repayments["results"]) == Decimal(loan["amount"])
    final = customer.api.get(f"{path}/instalments").data
    assert all(row["status"] == "paid" for row in final)
    assert sum(Decimal(row["principal_paid"]) for row in final) == Decimal("10000.00")
    assert sum(Decimal(row["interest_paid"]) for row in final) == Decimal(loan["total_interest"])
    assert agent.api.post(f"{path}/repayments", {"amount": "1.00"}, headers=key()).error_code == "loan_not_active"

    # The agent's own book, through the gateway: today the loan is closed and everything was collected;
    # on the sixth due date, the principal of six instalments had been repaid.
    report = agent.api.get(f"/api/loan/reports/portfolio?from={start.isoformat()}")
    assert report.status == 200, report.body
    assert report.data["loans"]["CLOSED"] == {"count": 1, "principal": "10000.00"}
    assert report.data["collected_in_period"]["amount"] == loan["amount"]
    sixth = final[5]["due_date"]
    then = agent.api.get(f"/api/loan/reports/portfolio?as_of={sixth}").data
    repaid = sum(Decimal(row["principal_due"]) for row in final[:6])
    assert Decimal(then["outstanding_principal"]) == Decimal("10000.00") - repaid
    assert then["loans"]["DISBURSED"]["count"] == 1
    assert then["par"]["par1"] == "0.0000"
    spreadsheet = agent.api.get("/api/loan/reports/collections?format=csv")
    assert spreadsheet.status == 200, spreadsheet.body
    assert spreadsheet.headers["Content-Type"] == "text/csv; charset=utf-8"
    header, *lines = spreadsheet.body.decode().splitlines()
    assert header == "month,due,paid,overdue,written_off,collected,collection_rate"
    assert lines[-1].startswith("total,")

    # The customer hears of the disbursement, every repayment and the closure.
    wait_for(lambda: notifications_of(customer, "loan.closed"), timeout=40, message="the loan.closed notice")
    wait_for(lambda: notifications_of(customer, "loan.disbursed"), timeout=40, message="the loan.disbursed notice")
    received = wait_for(
        lambda: (found := [n for n in all_notifications(customer, "repayment.received") if n["channel"] == "in_app"])
        and len(found) == 12
        and found,
        timeout=40,
        message="twelve repayment.received notices",
    )
    assert len(received) == 12


def test_a_late_instalment_is_fined_once_and_the_customer_and_agent_are_told(system, admin):
    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    today = datetime.now(UTC).date()
    start = add_months(today, -2)
    loan = approved_loan_back_dated(system, admin, agent, customer, months=6, approved_on=start)
    path = f"/api/loan/{loan['id']}"
    assert admin.api.post(f"{path}/disburse", {"date": start.isoformat()}, headers=key()).status == 200
    first_due = add_months(start, 1)

    for _ in range(2):  # the same day twice: nothing is done twice
        out = loan_manage(system, "run_daily", "--as-of", (first_due + timedelta(days=6)).isoformat())
    assert "0 late fees" in out
    assert "0 overdue notices" in out

    fees = [tx for tx in admin.api.get(f"{path}/transactions").data["results"] if tx["kind"] == "fee"]
    assert len(fees) == 1
    assert fees[0]["instalment"] == 1
    late = admin.api.get(f"{path}").data
    assert late["outstanding_fees"] == fees[0]["amount"]
    assert late["days_past_due"] > 0
    listed = admin.api.get("/api/loan/list-loans-admin-agent?status=DISBURSED&overdue=true&page_size=100").data
    assert loan["id"] in [row["id"] for row in listed["results"]]

    wait_for(lambda: notifications_of(customer, "loan.overdue"), timeout=40, message="the customer's overdue notice")
    wait_for(lambda: notifications_of(agent, "loan.overdue"), timeout=40, message="the agent's overdue notice")

    # The admin waives the fee: the balance is corrected and the customer told.
    reversed_fee = admin.api.post(f"{path}/transactions/{fees[0]['id']}/reverse", {"note": "goodwill"})
    assert reversed_fee.status == 201, reversed_fee.body
    assert reversed_fee.data["loan"]["outstanding_fees"] == "0.00"
    wait_for(lambda: notifications_of(customer, "repayment.reversed"), timeout=40, message="the reversal notice")


def test_a_statement_is_rendered_by_the_loan_worker(system, admin):
    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    today = datetime.now(UTC).date()
    loan = approved_loan_back_dated(system, admin, agent, customer, months=6, approved_on=today)
    path = f"/api/loan/{loan['id']}"
    assert admin.api.post(f"{path}/disburse", {}, headers=key()).status == 200

    queued = customer.api.post(f"{path}/statements")
    assert queued.status == 202, queued.body
    statement = f"{path}/statements/{queued.data['id']}"
    ready = wait_for(
        lambda: (reply := customer.api.get(statement)).data["status"] == "ready" and reply.data,
        timeout=60,
        message="the statement rendered by loan_service's worker",
    )
    pdf = customer.api.get(ready["download"], headers={"Accept": "application/pdf"})
    assert pdf.status == 200
    assert pdf.headers.get("Content-Type") == "application/pdf"
    assert pdf.body.startswith(b"%PDF")


def test_a_repayment_retried_after_a_gateway_timeout_is_taken_once(system, admin):
    from tests.test_edge import frozen

    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    loan = approved_loan_back_dated(system, admin, agent, customer, months=12, approved_on=datetime.now(UTC).date())
    path = f"/api/loan/{loan['id']}"
    assert admin.api.post(f"{path}/disburse", {}, headers=key()).status == 200
    body, headers = {"amount": "500.00"}, key()

    with frozen(system, "loan"):
        first = agent.api.post(f"{path}/repayments", body, headers=headers)
    assert first.status == 504, first.body

    # The client retries with the same key: the frozen request ran once it thawed, or runs now; never both.
    retried = wait_for(
        lambda: (reply := agent.api.post(f"{path}/repayments", body, headers=headers)).status == 201 and reply,
        timeout=30,
        message="the retried repayment's reply",
    )
    again = agent.api.post(f"{path}/repayments", body, headers=headers)
    assert (again.status, again.json) == (201, retried.json)
    repayments = customer.api.get(f"{path}/repayments").data
    assert repayments["count"] == 1
    assert repayments["results"][0]["amount"] == "500.00"
