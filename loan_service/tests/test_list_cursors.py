"""The loan lists and a loan's transactions walked by cursor: every row once, in order, whatever changes meanwhile."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.testing import walk_by_cursor
from loans import services, servicing
from loans.models import Loan
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID, OTHER_CUSTOMER_ID, months_ago

pytestmark = pytest.mark.django_db

START = timezone.now() - timedelta(days=2)
PRINCIPALS = ["20000.00", "50000.00", "90000.00"]


def make_loans(count: int, *, customer_id: int = CUSTOMER_ID, moments: int = 3) -> list[Loan]:
    """`count` NEW loans of 3 principals, created at `moments` distinct times: ties in every ordering."""
    loans = [
        services.create_loan(
            agent_id=AGENT_ID,
            customer_id=customer_id,
            principal=Decimal(PRINCIPALS[number % len(PRINCIPALS)]),
            months=12,
        )
        for number in range(count)
    ]
    for number, loan in enumerate(loans):
        Loan.objects.filter(pk=loan.pk).update(created_at=START + timedelta(seconds=number % moments))
    return list(Loan.objects.filter(pk__in=[loan.pk for loan in loans]))


def ordered(loans, *names: str) -> list[int]:
    """The ids of `loans` sorted by `names` ("-" descending) and then the id, as the lists order them."""
    rows = sorted(loans, key=lambda loan: loan.id, reverse=names[-1].startswith("-"))
    for name in reversed(names):
        rows.sort(key=lambda loan, name=name: getattr(loan, name.lstrip("-")), reverse=name.startswith("-"))
    return [loan.id for loan in rows]


def ids(pages) -> list[int]:
    return [row["id"] for page in pages for row in page["results"]]


@pytest.mark.parametrize("ordering", ["", "-created_at", "created_at", "principal", "-principal"])
def test_the_admin_list_walks_every_loan_once_in_each_ordering(admin_api, ordering):
    loans = make_loans(11)

    pages = walk_by_cursor(admin_api, f"/api/loan/list-loans-admin-agent?ordering={ordering}&page_size=3")

    assert ids(pages) == ordered(loans, ordering or "-created_at")
    assert [page["page"] for page in pages] == [1, None, None, None]
    assert {page["count"] for page in pages} == {11}


def test_new_loans_during_a_walk_are_not_in_it_and_skip_nothing(admin_api):
    loans = make_loans(9)
    added = []

    pages = walk_by_cursor(
        admin_api,
        "/api/loan/list-loans-admin-agent?page_size=2",
        between_pages=lambda n: added.append(  # created now: newer than the walk's rows, before its cursor
            services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("30000.00"), months=6)
        ),
    )

    assert ids(pages) == ordered(loans, "-created_at")
    assert not {loan.id for loan in added} & set(ids(pages))


def test_a_decision_during_the_walk_of_a_status_list_skips_no_other_loan(admin_api):
    new = ordered(make_loans(8), "-created_at")

    def during(pages_read: int) -> None:
        if pages_read == 1:
            services.decide_loan(loan_id=new[5], admin_id=ADMIN_ID, status="APPROVED")  # not read yet: leaves

    pages = walk_by_cursor(admin_api, "/api/loan/list-loans-admin-agent?status=NEW&page_size=3", between_pages=during)

    assert ids(pages) == [loan_id for loan_id in new if loan_id != new[5]]


def test_a_cursor_keeps_the_filters(admin_api):
    make_loans(5, customer_id=OTHER_CUSTOMER_ID)
    mine = make_loans(7)

    pages = walk_by_cursor(admin_api, f"/api/loan/list-loans-admin-agent?customer_id={CUSTOMER_ID}&page_size=2")

    assert ids(pages) == ordered(mine, "-created_at")
    assert {page["count"] for page in pages} == {7}


def test_the_customer_list_walks_only_their_own_loans(customer_api):
    make_loans(4, customer_id=OTHER_CUSTOMER_ID)
    mine = make_loans(6)

    pages = walk_by_cursor(customer_api, "/api/loan/list-loans-customer?page_size=4")

    assert ids(pages) == ordered(mine, "-created_at")


def test_a_cursor_page_of_a_status_list_costs_two_queries_the_count_kept(admin_api):
    make_loans(6)
    cursor = admin_api.get("/api/loan/list-loans-admin-agent?status=NEW&page_size=2").json()["data"]["next_cursor"]

    with CaptureQueriesContext(connection) as queries:
        response = admin_api.get(f"/api/loan/list-loans-admin-agent?status=NEW&page_size=2&cursor={cursor}")

    assert response.json()["data"]["count"] == 6
    assert len(queries) == 2  # the keyset slice and the kept status count
    assert not any("OFFSET" in query["sql"].upper() for query in queries.captured_queries)


@pytest.mark.parametrize("cursor", ["nonsense", "WyJ4Il0:forged", ""])
def test_a_bad_cursor_is_400_on_cursor(admin_api, cursor):
    response = admin_api.get(f"/api/loan/list-loans-admin-agent?cursor={cursor}")

    assert response.status_code == 400
    assert (response.json()["error"]["code"], list(response.json()["error"]["details"])) == (
        "validation_error",
        ["cursor"],
    )


def test_a_cursor_of_one_ordering_is_400_in_another(admin_api):
    make_loans(3)
    cursor = admin_api.get("/api/loan/list-loans-admin-agent?page_size=1").json()["data"]["next_cursor"]

    response = admin_api.get(f"/api/loan/list-loans-admin-agent?ordering=principal&cursor={cursor}")

    assert (response.status_code, list(response.json()["error"]["details"])) == (400, ["cursor"])


def test_page_numbers_stop_at_ten_thousand_rows(customer_api):
    response = customer_api.get("/api/loan/list-loans-customer?page=101&page_size=100")

    assert (response.status_code, list(response.json()["error"]["details"])) == (400, ["page"])


def test_transactions_walk_in_date_order_and_a_new_repayment_comes_once_at_the_end(make_disbursed, customer_api):
    loan = make_disbursed(principal="10000.00", months=12, on=months_ago(6))
    for month in (5, 4, 3, 2):
        servicing.record_repayment(loan_id=loan.id, user_id=AGENT_ID, amount=Decimal("100.00"), on=months_ago(month))
    before = list(loan.transactions.order_by("on", "id").values_list("id", flat=True))
    later = []

    def during(pages_read: int) -> None:
        if pages_read == 1:
            later.append(servicing.record_repayment(loan_id=loan.id, user_id=AGENT_ID, amount=Decimal("50.00"))[0])

    pages = walk_by_cursor(customer_api, f"/api/loan/{loan.id}/transactions?page_size=2", between_pages=during)

    seen = ids(pages)
    assert seen[: len(before)] == before
    assert seen[len(before) :] == [later[0].id]


def test_repayments_walk_by_cursor(make_disbursed, admin_api):
    loan = make_disbursed(principal="10000.00", months=12, on=months_ago(6))
    for month in (5, 4, 3, 2, 1):
        servicing.record_repayment(loan_id=loan.id, user_id=AGENT_ID, amount=Decimal("10.00"), on=months_ago(month))
    expected = list(loan.transactions.filter(kind="repayment").order_by("on", "id").values_list("id", flat=True))

    pages = walk_by_cursor(admin_api, f"/api/loan/{loan.id}/repayments?page_size=2")

    assert ids(pages) == expected
    assert {page["count"] for page in pages} == {5}


def test_a_cursor_of_the_loan_list_is_400_on_the_transactions(make_disbursed, admin_api):
    loan = make_disbursed()
    make_loans(2)
    cursor = admin_api.get("/api/loan/list-loans-admin-agent?page_size=1").json()["data"]["next_cursor"]

    response = admin_api.get(f"/api/loan/{loan.id}/transactions?cursor={cursor}")

    assert (response.status_code, list(response.json()["error"]["details"])) == (400, ["cursor"])


def test_the_openapi_document_names_the_cursor_and_next_cursor(api):
    document = api.get("/openapi.json?format=json").json()

    for path in (
        "/api/loan/list-loans-admin-agent",
        "/api/loan/list-loans-customer",
        "/api/loan/{loan_id}/transactions",
    ):
        assert "cursor" in {p["name"] for p in document["paths"][path]["get"]["parameters"]}
    assert "next_cursor" in document["components"]["schemas"]["LoanPageOutput"]["properties"]
