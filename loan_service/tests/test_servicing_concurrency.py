"""Servicing races on PostgreSQL, with real threads each on its own connection (common.testing.run_together)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from common.outbox.models import OutboxMessage
from common.testing import run_together
from loans import reports, schedule, services
from loans.daily import run_daily
from loans.fees import parse_late_fee
from loans.models import Loan, LoanTransaction
from loans.selectors import state_of
from tests.conftest import AGENT_ID, CUSTOMER_ID, Api, disbursed, months_ago, repay

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def assert_stored_state_is_the_replay(loan_id: int) -> None:
    loan = Loan.objects.get(pk=loan_id)
    state = state_of(loan)
    stored = list(
        loan.instalments.order_by("number").values_list(
            "number", "principal_due", "interest_due", "fee_due", "principal_paid", "interest_paid", "fee_paid"
        )
    )
    replayed = [
        (
            line.number,
            line.principal_due,
            line.interest_due,
            line.fee_due,
            line.principal_paid,
            line.interest_paid,
            line.fee_paid,
        )
        for line in state.lines
    ]
    assert stored == replayed
    assert (loan.total_outstanding, loan.outstanding_fees) == (state.total_outstanding, state.outstanding_fees)
    for tx in loan.transactions.filter(kind="repayment"):
        part = state.allocations[tx.id]
        assert (tx.principal_portion, tx.interest_portion, tx.fee_portion) == (part.principal, part.interest, part.fee)


def test_twenty_concurrent_repayments_are_each_applied_once():
    loan = disbursed(principal="1000000.00", months=60, on=months_ago(3))
    amounts = [Decimal("1000.00") + index * Decimal("37.11") for index in range(20)]

    codes = run_together(20, lambda i: repay(Api().as_role("agent", AGENT_ID), loan.id, amounts[i]).status_code)

    assert codes == [201] * 20
    repayments = LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment")
    assert sorted(tx.amount for tx in repayments) == sorted(amounts)
    assert sum(tx.principal_portion + tx.interest_portion + tx.fee_portion for tx in repayments) == sum(amounts)
    assert OutboxMessage.objects.filter(name="repayment.received").count() == 20
    assert_stored_state_is_the_replay(loan.id)
    before = schedule.repayment(loan.principal, loan.interest, 60).amount
    assert Loan.objects.get(pk=loan.id).total_outstanding < before - sum(amounts) + Decimal("1")  # all counted


def test_the_same_idempotency_key_from_twenty_threads_applies_one_repayment():
    loan = disbursed(principal="1000000.00", months=60, on=months_ago(3))

    def post(_index: int):
        response = repay(Api().as_role("agent", AGENT_ID), loan.id, "2500.00", key="pay-once-7")
        return response.status_code, response.json()

    replies = run_together(20, post)

    assert LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment").count() == 1
    statuses = sorted(code for code, _ in replies)
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
    created = {body["data"]["transaction"]["id"] for code, body in replies if code == 201}
    assert len(created) == 1  # every 201 is the same repayment, replayed
    conflicts = [body["error"]["code"] for code, body in replies if code == 409]
    assert set(conflicts) <= {"idempotency_request_in_progress"}


def test_the_daily_job_concurrent_with_repayments_loses_nothing(settings):
    settings.LOAN_LATE_FEE = parse_late_fee("25.00")
    loans = [disbursed(principal="200000.00", months=24, on=months_ago(4)) for _ in range(4)]
    today = timezone.localdate()

    def act(index: int):
        if index < 2:
            return run_daily(as_of=today, batch_size=1).fees
        loan = loans[index % 4]
        return repay(Api().as_role("agent", AGENT_ID), loan.id, Decimal("150.00") + index).status_code

    results = run_together(12, act)

    assert sorted(results[2:]) == [201] * 10
    late_instalments = sum(
        loan.instalments.filter(due_date__lte=today - timedelta(days=settings.LOAN_LATE_FEE_GRACE_DAYS)).count()
        for loan in loans
    )
    assert LoanTransaction.objects.filter(kind="fee").count() == late_instalments  # each once, by one of the runs
    assert results[0] + results[1] == late_instalments
    assert LoanTransaction.objects.filter(kind="repayment").count() == 10
    for loan in loans:
        assert_stored_state_is_the_replay(loan.id)


def test_two_daily_jobs_at_once_do_the_work_once():
    loans = [disbursed(months=12, on=months_ago(3)) for _ in range(6)]

    runs = run_together(2, lambda _: run_daily(as_of=timezone.localdate(), batch_size=2))

    notices = OutboxMessage.objects.filter(name="loan.overdue").count()
    assert notices == sum(run.overdue_notices for run in runs) == 6 * 2
    assert LoanTransaction.objects.filter(kind="fee").count() == sum(run.fees for run in runs)
    for loan in loans:
        assert_stored_state_is_the_replay(loan.id)


def test_concurrent_writes_to_many_loans_keep_the_portfolio_slices_exact():
    """Repayments of twelve loans of one agent, twelve new loans and the daily job, all at once: the
    kept slices (append-only, so nobody waits on them) still sum to the loan rows, and the report
    of today agrees with one of a day that reads the transactions."""
    loans = [disbursed(principal="20000.00", months=12, on=months_ago(2)) for _ in range(12)]

    def work(index: int):
        if index < 12:
            return repay(Api().as_role("agent", AGENT_ID), loans[index].id, "900.00").status_code
        if index < 24:
            api = Api().as_role("agent", AGENT_ID)
            body = {"customer_id": CUSTOMER_ID, "principal": "15000.00", "months": 6}
            return api.post("/api/loan/customer-loan", body, format="json").status_code
        run_daily(as_of=timezone.localdate())
        return 0

    codes = run_together(25, work)

    assert codes[:24] == [201] * 24
    assert services.rebuild_portfolio() is True
    today = timezone.localdate()
    kept = reports.portfolio(as_of=today, period_start=today)
    assert kept["loans"]["DISBURSED"]["count"] == 12
    assert kept["outstanding_principal"] == sum(
        (loan.outstanding_principal for loan in Loan.objects.filter(status="DISBURSED")), Decimal("0.00")
    )
