"""A loan after approval, through the API: disbursement, repayments, prepayment, reversal, closure."""

import calendar
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from common.outbox.models import OutboxMessage
from loans import schedule, services
from loans.models import Instalment, Loan, LoanStatusCount, LoanTransaction
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID, disbursed, months_ago, repay

pytestmark = pytest.mark.django_db


def instalments(loan_id: int) -> list[tuple]:
    return list(
        Instalment.objects.filter(loan_id=loan_id)
        .order_by("number")
        .values_list(
            "number",
            "due_date",
            "principal_due",
            "interest_due",
            "fee_due",
            "principal_paid",
            "interest_paid",
            "fee_paid",
            "paid_off_on",
        )
    )


def balances(loan_id: int) -> tuple:
    loan = Loan.objects.get(pk=loan_id)
    return (
        loan.status,
        loan.outstanding_principal,
        loan.outstanding_interest,
        loan.outstanding_fees,
        loan.total_outstanding,
        loan.next_due_date,
        loan.next_due_amount,
        loan.days_past_due,
    )


def test_disbursement_fixes_the_schedule_from_its_date(admin_api):
    loan = services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("10000"), months=12)
    services.decide_loan(loan_id=loan.id, admin_id=ADMIN_ID, status="APPROVED")

    response = admin_api.post(f"/api/loan/{loan.id}/disburse", {}, format="json", HTTP_IDEMPOTENCY_KEY="d-1")

    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    today = timezone.localdate()
    assert data["status"] == "DISBURSED"
    assert data["disbursed_on"] == data["start_date"] == today.isoformat()
    assert data["end_date"] == schedule.add_months(today, 12).isoformat()
    assert data["total_outstanding"] == "10463.59"  # the schedule's amount
    assert data["next_due_date"] == schedule.add_months(today, 1).isoformat()
    assert data["next_due_amount"] == "871.97"
    rows = instalments(loan.id)
    assert [row[1] for row in rows] == [schedule.add_months(today, k) for k in range(1, 13)]
    [tx] = LoanTransaction.objects.filter(loan_id=loan.id)
    assert (tx.kind, tx.amount, tx.on) == ("disbursement", Decimal("10000.00"), today)
    assert OutboxMessage.objects.filter(name="loan.disbursed").count() == 1
    assert dict(LoanStatusCount.objects.values_list("status", "count"))["DISBURSED"] == 1


def test_due_dates_clamp_to_the_end_of_the_month_and_come_back():
    year = timezone.localdate().year - 2
    loan = disbursed(months=3, on=date(year, 1, 31))

    dues = [row[1] for row in instalments(loan.id)]

    february_end = 29 if calendar.isleap(year) else 28
    assert dues == [date(year, 2, february_end), date(year, 3, 31), date(year, 4, 30)]


def test_twelve_months_paid_on_time_then_paid_off_closes_with_the_schedules_totals(agent_api):
    loan = disbursed(months=12, on=months_ago(12))
    plan = schedule.repayment(loan.principal, loan.interest, 12, start=loan.disbursed_on).instalments

    for row in plan[:11]:
        assert repay(agent_api, loan.id, row.payment, row.due_date).status_code == 201
    last_day = plan[10].due_date + timedelta(days=10)
    payoff = agent_api.get(f"/api/loan/{loan.id}/payoff?date={last_day}").json()["data"]
    response = repay(agent_api, loan.id, payoff["payoff"], last_day)

    assert response.status_code == 201, response.json()
    final = response.json()["data"]["loan"]
    assert final["status"] == "CLOSED"
    assert final["total_outstanding"] == "0.00"
    assert final["closed_on"] == last_day.isoformat()
    rows = instalments(loan.id)
    assert all(row[8] is not None for row in rows)  # every instalment paid off
    # The first eleven are exactly the schedule's rows; the twelfth pays its principal and the interest accrued.
    assert [(row[5], row[6]) for row in rows[:11]] == [(p.principal, p.interest) for p in plan[:11]]
    assert rows[11][5] == plan[11].principal
    accrued = schedule.to_cents(plan[11].interest * 10 / (plan[11].due_date - plan[10].due_date).days)
    assert rows[11][6] == accrued
    paid = sum(Decimal(tx.amount) for tx in LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment"))
    assert paid == sum(p.payment for p in plan[:11]) + plan[11].principal + accrued
    assert OutboxMessage.objects.filter(name="loan.closed").count() == 1
    assert OutboxMessage.objects.filter(name="repayment.received").count() == 12


def test_paying_every_instalment_on_its_due_date_pays_exactly_the_schedule(admin_api):
    loan = disbursed(months=12, on=months_ago(12))
    plan = schedule.repayment(loan.principal, loan.interest, 12, start=loan.disbursed_on)

    for row in plan.instalments:
        assert repay(admin_api, loan.id, row.payment, row.due_date).status_code == 201

    loan.refresh_from_db()
    assert loan.status == "CLOSED"
    assert loan.closed_on == plan.instalments[-1].due_date
    paid = sum(tx.amount for tx in loan.transactions.filter(kind="repayment"))
    assert paid == plan.amount == Decimal("10463.59")


def test_a_prepayment_shortens_the_term_with_the_same_emi(agent_api):
    loan = disbursed(principal="100000.00", months=24, on=months_ago(3))
    plan = schedule.repayment(loan.principal, loan.interest, 24, start=loan.disbursed_on).instalments
    repay(agent_api, loan.id, plan[0].payment, plan[0].due_date)

    response = repay(agent_api, loan.id, plan[1].payment + plan[2].payment + Decimal("30000.00"), plan[1].due_date)

    assert response.status_code == 201, response.json()
    rows = instalments(loan.id)
    assert len(rows) < 24
    emi = loan.emi
    later = rows[3:]
    assert all(row[2] + row[3] == emi for row in later[:-1])  # full instalments keep the EMI
    assert later[-1][2] + later[-1][3] <= emi  # the last one pays what is left
    assert sum(row[2] for row in rows) == loan.principal
    assert Loan.objects.get(pk=loan.id).end_date  # unchanged: the contract's end; the schedule ends earlier


def test_a_reversal_restores_the_exact_prior_state_and_tells_the_customer(admin_api):
    loan = disbursed(months=12, on=months_ago(6))
    plan = schedule.repayment(loan.principal, loan.interest, 12, start=loan.disbursed_on).instalments
    for row in plan[:3]:
        repay(admin_api, loan.id, row.payment, row.due_date)
    before = (instalments(loan.id), balances(loan.id))
    extra = repay(admin_api, loan.id, "2500.00", plan[3].due_date).json()["data"]["transaction"]
    assert (instalments(loan.id), balances(loan.id)) != before

    response = admin_api.post(
        f"/api/loan/{loan.id}/transactions/{extra['id']}/reverse", {"note": "bounced"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert (instalments(loan.id), balances(loan.id)) == before
    reversed_tx = LoanTransaction.objects.get(pk=extra["id"])
    assert reversed_tx.is_reversed
    assert reversed_tx.principal_portion == reversed_tx.interest_portion == 0
    [event] = OutboxMessage.objects.filter(name="repayment.reversed")
    assert event.message["payload"]["transaction_id"] == extra["id"]
    assert event.message["payload"]["total_outstanding"] == str(balances(loan.id)[4])
    again = admin_api.post(f"/api/loan/{loan.id}/transactions/{extra['id']}/reverse", {"note": "x"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "transaction_already_reversed"


def test_reversing_an_earlier_payment_reapplies_the_later_ones_in_order(admin_api):
    loan = disbursed(months=12, on=months_ago(6))
    plan = schedule.repayment(loan.principal, loan.interest, 12, start=loan.disbursed_on).instalments
    first = repay(admin_api, loan.id, plan[0].payment, plan[0].due_date).json()["data"]["transaction"]
    repay(admin_api, loan.id, plan[1].payment, plan[1].due_date)

    admin_api.post(f"/api/loan/{loan.id}/transactions/{first['id']}/reverse", {"note": "error"}, format="json")

    rows = instalments(loan.id)
    # The second payment now pays instalment 1 (oldest first) and nothing is left for instalment 2.
    assert rows[0][8] == plan[1].due_date
    assert rows[1][5] == rows[1][6] == 0
    assert Loan.objects.get(pk=loan.id).days_past_due > 0


def test_reversing_the_payoff_reopens_a_closed_loan(admin_api):
    loan = disbursed(months=1, on=months_ago(2))
    [row] = schedule.repayment(loan.principal, loan.interest, 1, start=loan.disbursed_on).instalments
    tx = repay(admin_api, loan.id, row.payment, row.due_date).json()["data"]["transaction"]
    assert Loan.objects.get(pk=loan.id).status == "CLOSED"

    admin_api.post(f"/api/loan/{loan.id}/transactions/{tx['id']}/reverse", {"note": "bounced"}, format="json")

    loan.refresh_from_db()
    assert (loan.status, loan.total_outstanding, loan.closed_on) == ("DISBURSED", row.payment, None)
    counts = dict(LoanStatusCount.objects.values_list("status", "count"))
    assert (counts["DISBURSED"], counts["CLOSED"]) == (1, 0)


def test_more_than_the_payoff_is_a_400_and_writes_nothing(agent_api):
    loan = disbursed(months=12, on=months_ago(1))
    payoff = Decimal(agent_api.get(f"/api/loan/{loan.id}/payoff").json()["data"]["payoff"])
    before = (instalments(loan.id), balances(loan.id), LoanTransaction.objects.count())

    response = repay(agent_api, loan.id, payoff + Decimal("0.01"))

    assert response.status_code == 400
    assert str(payoff) in response.json()["error"]["details"]["amount"][0]
    assert (instalments(loan.id), balances(loan.id), LoanTransaction.objects.count()) == before
    assert not OutboxMessage.objects.filter(name="repayment.received").exists()


def test_the_payoff_quote_is_principal_due_interest_and_the_accrued_part(customer_api):
    loan = disbursed(months=12, on=months_ago(2))
    plan = schedule.repayment(loan.principal, loan.interest, 12, start=loan.disbursed_on).instalments
    day = plan[0].due_date + timedelta(days=5)

    quote = customer_api.get(f"/api/loan/{loan.id}/payoff?date={day}").json()["data"]

    accrued = schedule.to_cents(plan[1].interest * 5 / (plan[1].due_date - plan[0].due_date).days)
    assert Decimal(quote["principal"]) == loan.principal
    assert Decimal(quote["interest"]) == plan[0].interest + accrued
    assert Decimal(quote["payoff"]) == loan.principal + plan[0].interest + accrued
    assert quote["fees"] == "0.00"


@pytest.mark.parametrize(
    "amount",
    [0, "0", "0.00", "-5", "10.001", "NaN", "Infinity", "1e6", "1,000", "", " ", 12.5, True, None, [], "12.5.1"],
    ids=repr,
)
def test_bad_amounts_are_400_and_write_nothing(agent_api, amount):
    loan = disbursed(on=months_ago(1))
    before = LoanTransaction.objects.count()

    response = agent_api.post(
        f"/api/loan/{loan.id}/repayments", {"amount": amount}, format="json", HTTP_IDEMPOTENCY_KEY="bad"
    )

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["success"] is False
    assert "amount" in body["error"]["details"]
    assert LoanTransaction.objects.count() == before


@pytest.mark.parametrize(("offset", "message"), [(1, "future"), (-40, "before the disbursement")])
def test_repayment_dates_outside_the_loan_are_400(agent_api, offset, message):
    loan = disbursed(on=timezone.localdate() - timedelta(days=30))
    day = timezone.localdate() + timedelta(days=offset)

    response = repay(agent_api, loan.id, "100.00", day)

    assert response.status_code == 400
    assert message in response.json()["error"]["details"]["date"][0]


def test_a_repayment_needs_a_disbursed_loan(agent_api, new_loan):
    response = repay(agent_api, new_loan.id, "100.00")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "loan_not_active"


def test_a_customer_cannot_post_repayments_but_reads_their_own(customer_api, other_customer_api, agent_api):
    loan = disbursed(on=months_ago(1))
    assert repay(customer_api, loan.id, "100.00").status_code == 403
    repay(agent_api, loan.id, "100.00")

    own = customer_api.get(f"/api/loan/{loan.id}/repayments")
    assert own.status_code == 200
    assert own.json()["data"]["count"] == 1
    for path in ("repayments", "transactions", "instalments", "payoff"):
        assert other_customer_api.get(f"/api/loan/{loan.id}/{path}").status_code == 404


def test_an_unapproved_agent_cannot_post_repayments(api):
    loan = disbursed(on=months_ago(1))
    response = repay(api.as_role("agent", 99, is_approved=False), loan.id, "100.00")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"


def test_disbursement_rules(admin_api, new_loan):
    def disburse(loan_id, body):
        return admin_api.post(
            f"/api/loan/{loan_id}/disburse", body, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )

    assert disburse(new_loan.id, {}).json()["error"]["code"] == "loan_not_disbursable"
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert disburse(new_loan.id, {"date": tomorrow}).status_code == 400
    before_approval = disburse(new_loan.id, {"date": yesterday})
    assert before_approval.status_code == 400
    assert "approval" in before_approval.json()["error"]["details"]["date"][0]
    assert disburse(new_loan.id, {"date": "2026-13-01"}).status_code == 400
    assert disburse(999999, {}).status_code == 404
    assert Loan.objects.get(pk=new_loan.id).status == "APPROVED"
    assert disburse(new_loan.id, {"date": timezone.localdate().isoformat()}).status_code == 200
    assert disburse(new_loan.id, {"x": 1}).json()["error"]["code"] == "loan_not_disbursable"


def test_only_admins_disburse_cancel_write_off_and_reverse(agent_api, customer_api, new_loan):
    for api in (agent_api, customer_api):
        for path in ("disburse", "cancel", "write-off", "transactions/1/reverse"):
            assert api.post(f"/api/loan/{new_loan.id}/{path}", {"note": "x"}, format="json").status_code == 403


def test_cancel_only_after_the_disbursement_window(admin_api, new_loan, settings):
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")

    early = admin_api.post(f"/api/loan/{new_loan.id}/cancel", {}, format="json")
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "loan_disbursement_window_open"

    Loan.objects.filter(pk=new_loan.id).update(
        decided_at=timezone.now() - timedelta(days=settings.LOAN_DISBURSE_WITHIN_DAYS)
    )
    response = admin_api.post(f"/api/loan/{new_loan.id}/cancel", {"note": "customer withdrew"}, format="json")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "CANCELLED"
    assert OutboxMessage.objects.filter(name="loan.cancelled").count() == 1
    again = admin_api.post(f"/api/loan/{new_loan.id}/cancel", {}, format="json")
    assert again.json()["error"]["code"] == "loan_not_cancellable"


def test_write_off_needs_the_days_past_due_and_records_what_was_lost(admin_api, settings):
    loan = disbursed(months=12, on=timezone.localdate() - timedelta(days=150))
    first_due = schedule.add_months(loan.disbursed_on, 1)
    late = (timezone.localdate() - first_due).days
    assert late >= 90

    settings.LOAN_WRITE_OFF_MIN_DPD = late + 1
    refused = admin_api.post(f"/api/loan/{loan.id}/write-off", {"note": "gone"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "loan_not_in_arrears"
    assert admin_api.post(f"/api/loan/{loan.id}/write-off", {"note": ""}, format="json").status_code == 400

    settings.LOAN_WRITE_OFF_MIN_DPD = late
    payoff = admin_api.get(f"/api/loan/{loan.id}/payoff").json()["data"]
    response = admin_api.post(f"/api/loan/{loan.id}/write-off", {"note": "customer unreachable"}, format="json")

    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["status"] == "WRITTEN_OFF"
    assert data["total_outstanding"] == "0.00"
    assert (data["written_off_principal"], data["written_off_interest"]) == (payoff["principal"], payoff["interest"])
    assert OutboxMessage.objects.get(name="loan.written_off").message["payload"]["days_past_due"] == late
    assert repay(admin_api, loan.id, "1.00").json()["error"]["code"] == "loan_not_active"


def test_the_loan_object_carries_its_balances_and_lists_filter_by_arrears(admin_api):
    late = disbursed(months=12, on=timezone.localdate() - timedelta(days=75))
    current = disbursed(months=12, on=timezone.localdate() - timedelta(days=10))

    data = admin_api.get(f"/api/loan/{late.id}").json()["data"]
    assert data["days_past_due"] == (timezone.localdate() - schedule.add_months(late.disbursed_on, 1)).days
    assert {"outstanding_principal", "outstanding_interest", "outstanding_fees", "total_outstanding"} <= set(data)

    def ids(query):
        response = admin_api.get(f"/api/loan/list-loans-admin-agent?{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["data"]["results"]]

    assert ids("status=DISBURSED&overdue=true") == [late.id]
    assert ids("overdue=false&status=DISBURSED") == [current.id]
    assert ids("min_dpd=30") == [late.id]
    assert ids(f"min_dpd={data['days_past_due'] + 1}") == []
    assert admin_api.get("/api/loan/list-loans-admin-agent?min_dpd=-1").status_code == 400
    assert admin_api.get("/api/loan/list-loans-admin-agent?overdue=maybe").status_code == 400


def test_instalments_show_their_state(customer_api):
    loan = disbursed(months=3, on=months_ago(2))

    rows = customer_api.get(f"/api/loan/{loan.id}/instalments").json()["data"]

    assert [row["status"] for row in rows] == ["overdue", "due", "due"]
    assert rows[0]["unpaid"] == str(Decimal(rows[0]["principal_due"]) + Decimal(rows[0]["interest_due"]))


def test_history_names_the_servicing_changes(admin_api):
    loan = disbursed(months=3, on=months_ago(1))
    repay(admin_api, loan.id, "100.00")

    changes = [entry["change"] for entry in admin_api.get(f"/api/loan/{loan.id}/history").json()["data"]]

    assert changes == ["created", "approved", "disbursed", "repayment"]
