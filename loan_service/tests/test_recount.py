"""Kept status counts that drifted (writes outside the services): recount_loans repairs them."""

import io
import threading
import time
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from loans import services
from loans.models import Loan, LoanStatusCount
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID


def a_loan() -> Loan:
    return services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("50000.00"), months=12)


def kept_counts() -> dict[str, int]:
    return dict(LoanStatusCount.objects.filter(count__gt=0).values_list("status", "count"))


def row_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Loan.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def recount() -> str:
    out = io.StringIO()
    call_command("recount_loans", stdout=out)
    return out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db
def test_recount_loans_repairs_counts_changed_outside_the_services():
    first, second, _ = a_loan(), a_loan(), a_loan()
    services.decide_loan(loan_id=first.id, admin_id=ADMIN_ID, status="REJECTED", note="no")
    # given: a write outside the services (a data fix in psql), and a lost count row
    Loan.objects.filter(pk=second.id).update(status="REJECTED", decided_by=ADMIN_ID, decided_at=first.created_at)
    LoanStatusCount.objects.filter(status="NEW").delete()

    report = recount()

    assert kept_counts() == row_counts() == {"NEW": 1, "REJECTED": 2}
    assert "NEW: 0 -> 1" in report
    assert "REJECTED: 1 -> 2" in report
    assert LoanStatusCount.objects.get(status="APPROVED").count == 0


@pytest.mark.postgres
@pytest.mark.django_db
def test_recount_loans_changes_nothing_when_the_counts_are_right():
    a_loan()

    report = recount()

    assert kept_counts() == {"NEW": 1}
    assert "nothing to repair" in report


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_recount_waits_for_a_change_in_flight_and_counts_it():
    a_loan()
    created, release = threading.Event(), threading.Event()

    def create_and_hold() -> None:
        try:
            with transaction.atomic():
                a_loan()  # the loan row and its count are written, not committed
                created.set()
                release.wait(10)
        finally:
            connection.close()

    def recount_in_thread() -> None:
        try:
            recount()
        finally:
            connection.close()

    creator = threading.Thread(target=create_and_hold)
    creator.start()
    assert created.wait(10)
    counter = threading.Thread(target=recount_in_thread)
    counter.start()
    time.sleep(0.5)
    waiting = counter.is_alive()
    release.set()
    creator.join(10)
    counter.join(10)

    assert waiting  # it did not count while a loan was being written
    assert kept_counts() == row_counts() == {"NEW": 2}
