"""What must always hold in the database: the constraints, the kept status counts, nothing half-written, the seed."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.outbox.models import OutboxMessage
from loans import services
from loans.models import Loan, LoanStatusCount
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID

pytestmark = pytest.mark.django_db
LIST = "/api/loan/list-loans-admin-agent"


def listed_count(api, query: str = "") -> int:
    response = api.get(f"{LIST}?{query}")
    assert response.status_code == 200
    return response.json()["data"]["count"]


def assert_counts_match_the_rows(admin_api) -> None:
    for status in Loan.Status.values:
        assert listed_count(admin_api, f"status={status}") == Loan.objects.filter(status=status).count(), status
    assert listed_count(admin_api) == Loan.objects.filter().count()


def a_loan(principal: str = "50000.00") -> Loan:
    return services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal(principal), months=12)


def test_list_counts_follow_every_kind_of_change(admin_api):
    first, second, third = a_loan(), a_loan(), a_loan()
    services.edit_loan(loan_id=first.id, editor_id=AGENT_ID, months=24)
    services.decide_loan(loan_id=second.id, admin_id=ADMIN_ID, status="APPROVED")
    services.decide_loan(loan_id=third.id, admin_id=ADMIN_ID, status="REJECTED")

    assert dict(LoanStatusCount.objects.values_list("status", "count")) == {"NEW": 1, "APPROVED": 1, "REJECTED": 1}
    assert_counts_match_the_rows(admin_api)


def test_counts_filtered_by_customer_or_agent_count_the_rows(admin_api):
    a_loan()
    LoanStatusCount.objects.filter(status="NEW").update(count=99)  # the kept count is not used for these filters

    assert listed_count(admin_api, f"customer_id={CUSTOMER_ID}") == 1
    assert listed_count(admin_api, f"status=NEW&agent_id={AGENT_ID}") == 1
    assert listed_count(admin_api, "status=NEW") == 99


CHANGES = {
    "create": lambda loan: a_loan(),
    "edit": lambda loan: services.edit_loan(loan_id=loan.id, editor_id=AGENT_ID, months=30),
    "approve": lambda loan: services.decide_loan(loan_id=loan.id, admin_id=ADMIN_ID, status="APPROVED"),
    "reject": lambda loan: services.decide_loan(loan_id=loan.id, admin_id=ADMIN_ID, status="REJECTED", note="no"),
}


def change_then_fail(change: str, loan: Loan) -> None:
    with transaction.atomic():
        CHANGES[change](loan)
        raise RuntimeError("something after the change fails")


@pytest.mark.parametrize("change", CHANGES)
def test_a_failed_transaction_leaves_no_trace_and_a_committed_change_exactly_one_event(admin_api, change):
    loan = a_loan()
    before = (Loan.objects.get(pk=loan.id).months, OutboxMessage.objects.count(), Loan.history.count())
    counts = dict(LoanStatusCount.objects.values_list("status", "count"))

    with pytest.raises(RuntimeError):
        change_then_fail(change, loan)

    assert (Loan.objects.get(pk=loan.id).months, OutboxMessage.objects.count(), Loan.history.count()) == before
    assert dict(LoanStatusCount.objects.values_list("status", "count")) == counts
    assert Loan.objects.count() == 1

    CHANGES[change](loan)

    assert OutboxMessage.objects.count() == before[1] + 1
    assert Loan.history.count() == before[2] + 1
    assert_counts_match_the_rows(admin_api)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "MAYBE"},
        {"principal": Decimal("0.00")},
        {"months": 0},
        {"status": "APPROVED"},  # no decision recorded
        {"decided_by": 1, "decided_at": timezone.now()},  # a decision on a NEW loan
        {"status": "REJECTED", "decided_by": 1, "decided_at": timezone.now(), "start_date": timezone.localdate()},
    ],
    ids=["status", "principal", "months", "decided-without-decision", "new-with-decision", "rejected-with-dates"],
)
def test_the_database_refuses_a_loan_that_breaks_an_invariant(change):
    loan = a_loan()
    with pytest.raises(IntegrityError), transaction.atomic():
        Loan.objects.filter(pk=loan.id).update(**change)

    assert Loan.objects.get(pk=loan.id).status == "NEW"


def test_seed_loans_writes_loans_history_and_counts(admin_api):
    call_command("seed_loans", count=300, batch_size=128, stdout=open("/dev/null", "w"))  # noqa: SIM115

    decided = Loan.objects.exclude(status="NEW")
    assert Loan.objects.count() == 300
    assert 0 < decided.count() < 300
    assert Loan.history.filter(history_change_reason="created", status="NEW").count() == 300
    assert Loan.history.filter(history_change_reason__in=["approved", "rejected"]).count() == decided.count()
    assert not OutboxMessage.objects.exists()  # demo data notifies nobody
    assert_counts_match_the_rows(admin_api)


def test_a_seeded_loans_history_reads_like_one_made_through_the_api(admin_api):
    call_command("seed_loans", count=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    loan = Loan.objects.filter(status="APPROVED").first()

    entries = admin_api.get(f"/api/loan/{loan.id}/history").json()["data"]

    assert [(e["change"], e["changed_by"], e["status"]) for e in entries] == [
        ("created", loan.agent_id, "NEW"),
        ("approved", loan.decided_by, "APPROVED"),
    ]
    assert entries[1]["fields"]["start_date"] == [None, loan.start_date.isoformat()]
