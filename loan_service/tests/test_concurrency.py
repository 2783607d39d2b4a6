"""Races decided by PostgreSQL row locks: concurrent decisions, and edits racing decisions, through the API.

Real threads, each with its own connection, released together (common.testing.run_together).
"""

from decimal import Decimal

import pytest

from common.outbox.models import OutboxMessage
from common.testing import run_together
from loans import services
from loans.models import Loan, LoanStatusCount
from tests.conftest import AGENT_ID, CUSTOMER_ID, Api

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DECISION_EVENTS = ["loan.approved", "loan.rejected"]
KINDS = ["APPROVED", "REJECTED"]


def a_new_loan() -> Loan:
    return services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("80000"), months=24)


def admin_of(index: int) -> int:
    return 100 + index


def decide(loan_id: int, index: int, status: str) -> int:
    body = {"status": status} if status == "APPROVED" else {"status": status, "note": f"no {index}"}
    api = Api().as_role("admin", admin_of(index))
    return api.put(f"/api/loan/approve-reject-loan/{loan_id}", body, format="json").status_code


def edit(loan_id: int, index: int) -> int:
    api = Api().as_role("agent", AGENT_ID)
    return api.put(f"/api/loan/edit-loan/{loan_id}", {"months": 36 + index}, format="json").status_code


def assert_the_winner_is_the_one_decision_recorded(loan: Loan, decisions: dict[int, tuple[str, int]]) -> None:
    """`decisions`: thread index -> (status sent, HTTP status got). Exactly one got 200, and its decision stands."""
    assert sorted(code for _, code in decisions.values()) == [200] + [409] * (len(decisions) - 1)
    [(winner, (kind, _))] = [(index, sent) for index, sent in decisions.items() if sent[1] == 200]
    assert (loan.status, loan.decided_by) == (kind, admin_of(winner))
    recorded = [r for r in loan.history.all() if r.history_change_reason in ("approved", "rejected")]
    assert [(r.history_change_reason, r.history_user_id) for r in recorded] == [(kind.lower(), admin_of(winner))]
    [event] = OutboxMessage.objects.filter(name__in=DECISION_EVENTS)
    assert event.name == f"loan.{kind.lower()}"
    assert (event.message["payload"]["status"], event.message["payload"]["decided_by"]) == (kind, admin_of(winner))


def assert_counts_match_the_rows() -> None:
    kept = dict(LoanStatusCount.objects.filter(count__gt=0).values_list("status", "count"))
    assert kept == {loan.status: 1 for loan in Loan.objects.all()}


@pytest.mark.parametrize("round_number", range(10))
def test_twenty_concurrent_decisions_exactly_one_wins(round_number):
    loan = a_new_loan()
    kinds = {index: KINDS[index % 2] for index in range(20)}  # ten approvals and ten rejections

    codes = run_together(20, lambda index: decide(loan.id, index, kinds[index]))

    decided = Loan.objects.get(pk=loan.id)
    assert_the_winner_is_the_one_decision_recorded(decided, {i: (kinds[i], code) for i, code in enumerate(codes)})
    assert_counts_match_the_rows()


@pytest.mark.parametrize("round_number", range(10))
def test_edits_racing_decisions_never_overwrite_the_decision(round_number):
    loan = a_new_loan()
    # Even threads edit; odd ones decide, approvals (1, 5, 9...) and rejections (3, 7, 11...) mixed.
    kinds = {index: KINDS[index // 2 % 2] for index in range(1, 20, 2)}
    assert sorted(set(kinds.values())) == KINDS

    codes = run_together(20, lambda i: decide(loan.id, i, kinds[i]) if i in kinds else edit(loan.id, i))

    final = Loan.objects.get(pk=loan.id)
    edits = [code for index, code in enumerate(codes) if index not in kinds]
    history = list(final.history.order_by("history_date", "history_id"))
    assert_the_winner_is_the_one_decision_recorded(final, {i: (kinds[i], codes[i]) for i in kinds})
    assert set(edits) <= {200, 409}
    # Every edit that got 200 came before the decision; none after it.
    assert [r.history_change_reason for r in history[1:]] == ["updated"] * edits.count(200) + [final.status.lower()]
    assert final.months == history[-1].months == history[-2].months  # nothing was saved over the decision
    assert OutboxMessage.objects.filter(name="loan.terms_changed").count() == edits.count(200)
    assert_counts_match_the_rows()
