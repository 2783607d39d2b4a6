"""Races decided by PostgreSQL row locks: concurrent decisions, and edits racing decisions, through the API."""

from decimal import Decimal

import pytest

from common.outbox.models import OutboxMessage
from common.testing import run_together
from loans import services
from loans.models import Loan, LoanStatusCount
from tests.conftest import AGENT_ID, CUSTOMER_ID, Api

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DECISION_EVENTS = ["loan.approved", "loan.rejected"]


def a_new_loan() -> Loan:
    return services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("80000"), months=24)


def decide(loan_id: int, index: int) -> int:
    body = {"status": "APPROVED"} if index % 2 else {"status": "REJECTED", "note": f"no {index}"}
    api = Api().as_role("admin", 100 + index)
    return api.put(f"/api/loan/approve-reject-loan/{loan_id}", body, format="json").status_code


def edit(loan_id: int, index: int) -> int:
    api = Api().as_role("agent", AGENT_ID)
    return api.put(f"/api/loan/edit-loan/{loan_id}", {"months": 36 + index}, format="json").status_code


def assert_one_decision_recorded(loan: Loan) -> None:
    decisions = [r for r in loan.history.all() if r.history_change_reason in ("approved", "rejected")]
    assert len(decisions) == 1
    assert decisions[0].history_user_id == loan.decided_by
    assert OutboxMessage.objects.filter(name__in=DECISION_EVENTS).count() == 1
    assert OutboxMessage.objects.get(name__in=DECISION_EVENTS).message["payload"]["status"] == loan.status


def assert_counts_match_the_rows() -> None:
    kept = dict(LoanStatusCount.objects.filter(count__gt=0).values_list("status", "count"))
    assert kept == {loan.status: 1 for loan in Loan.objects.all()}


@pytest.mark.parametrize("round_number", range(10))
def test_twenty_concurrent_decisions_exactly_one_wins(round_number):
    loan = a_new_loan()

    statuses = run_together(20, lambda index: decide(loan.id, index))

    decided = Loan.objects.get(pk=loan.id)
    assert sorted(statuses) == [200] + [409] * 19
    assert_one_decision_recorded(decided)
    assert_counts_match_the_rows()


@pytest.mark.parametrize("round_number", range(10))
def test_edits_racing_decisions_never_overwrite_the_decision(round_number):
    loan = a_new_loan()

    # Even threads edit, odd ones decide (approve and reject mixed).
    statuses = run_together(20, lambda index: edit(loan.id, index) if index % 2 == 0 else decide(loan.id, index))

    final = Loan.objects.get(pk=loan.id)
    decisions, edits = statuses[1::2], statuses[0::2]
    history = list(final.history.order_by("history_date", "history_id"))
    assert sorted(decisions) == [200] + [409] * 9
    assert set(edits) <= {200, 409}
    assert [r.history_change_reason for r in history[1:]] == ["updated"] * edits.count(200) + [final.status.lower()]
    assert final.months == history[-1].months  # nothing was saved over the decision
    assert OutboxMessage.objects.filter(name="loan.updated").count() == edits.count(200)
    assert_one_decision_recorded(final)
    assert_counts_match_the_rows()
