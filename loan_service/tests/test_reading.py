"""Lists, one loan, its schedule and the quote: visibility rules, filters, pages and query counts."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loans import services
from loans.models import LoanStatusCount
from tests.conftest import AGENT_ID, CUSTOMER_ID, OTHER_CUSTOMER_ID

pytestmark = pytest.mark.django_db


def make_loans(count: int, customer_id: int = CUSTOMER_ID, principal: str = "50000.00") -> list:
    return [
        services.create_loan(agent_id=AGENT_ID, customer_id=customer_id, principal=Decimal(principal), months=12)
        for _ in range(count)
    ]


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["data"]["results"]


def test_admin_list_is_newest_first_and_filters(admin_api, new_loan):
    older, newer = make_loans(2, customer_id=OTHER_CUSTOMER_ID)
    services.decide_loan(loan_id=older.id, admin_id=1, status="APPROVED")

    everything = results(admin_api.get("/api/loan/list-loans-admin-agent"))
    approved = results(admin_api.get("/api/loan/list-loans-admin-agent?status=APPROVED"))
    of_other = results(admin_api.get(f"/api/loan/list-loans-admin-agent?customer_id={OTHER_CUSTOMER_ID}"))
    by_agent = results(admin_api.get(f"/api/loan/list-loans-admin-agent?agent_id={AGENT_ID}"))

    assert [loan["id"] for loan in everything] == [newer.id, older.id, new_loan.id]
    assert [loan["id"] for loan in approved] == [older.id]
    assert [loan["id"] for loan in of_other] == [newer.id, older.id]
    assert len(by_agent) == 3


def test_ordering_by_principal(agent_api):
    small, large = make_loans(1, principal="20000.00")[0], make_loans(1, principal="90000.00")[0]

    ascending = results(agent_api.get("/api/loan/list-loans-admin-agent?ordering=principal"))
    descending = results(agent_api.get("/api/loan/list-loans-admin-agent?ordering=-principal"))

    assert [loan["id"] for loan in ascending] == [small.id, large.id]
    assert [loan["id"] for loan in descending] == [large.id, small.id]


@pytest.mark.parametrize("query", ["status=MAYBE", "ordering=emi", "customer_id=abc", "page=0", "page_size=-1"])
def test_bad_filters_are_400(admin_api, query):
    response = admin_api.get(f"/api/loan/list-loans-admin-agent?{query}")

    assert response.status_code == 400
    assert response.json()["success"] is False


def test_pages_are_clamped_and_a_page_past_the_end_is_empty(admin_api):
    make_loans(3)

    first = admin_api.get("/api/loan/list-loans-admin-agent?page_size=2").json()["data"]
    past_end = admin_api.get("/api/loan/list-loans-admin-agent?page=9").json()["data"]
    clamped = admin_api.get("/api/loan/list-loans-admin-agent?page_size=1000").json()["data"]

    assert (first["count"], len(first["results"]), first["next"], first["previous"]) == (3, 2, 2, None)
    assert past_end["results"] == []
    assert clamped["page_size"] == 100


def test_the_query_count_does_not_grow_with_the_page_size(admin_api):
    make_loans(30)

    counts = []
    for size in (5, 30):
        with CaptureQueriesContext(connection) as queries:
            assert admin_api.get(f"/api/loan/list-loans-admin-agent?status=NEW&page_size={size}").status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1] == 2  # COUNT and the page


def test_the_customer_list_query_count_does_not_grow_with_the_page_size(customer_api):
    make_loans(30)

    counts = []
    for size in (5, 30):
        with CaptureQueriesContext(connection) as queries:
            assert len(results(customer_api.get(f"/api/loan/list-loans-customer?page_size={size}"))) == size
        counts.append(len(queries))

    assert counts[0] == counts[1] == 2


def test_a_customer_lists_only_their_own_loans(customer_api, new_loan):
    make_loans(2, customer_id=OTHER_CUSTOMER_ID)

    mine = results(customer_api.get("/api/loan/list-loans-customer"))
    new_only = results(customer_api.get("/api/loan/list-loans-customer?status=NEW"))

    assert [loan["id"] for loan in mine] == [new_loan.id]
    assert [loan["id"] for loan in new_only] == [new_loan.id]


@pytest.mark.parametrize(("role", "approved"), [("agent", True), ("admin", True), ("agent", False)])
def test_only_customers_use_the_customer_list(api, role, approved):
    assert api.as_role(role, 9, is_approved=approved).get("/api/loan/list-loans-customer").status_code == 403


def test_unapproved_agents_and_customers_cannot_list_all_loans(api):
    assert api.as_role("agent", 9, is_approved=False).get("/api/loan/list-loans-admin-agent").status_code == 403
    assert api.as_role("customer", 9).get("/api/loan/list-loans-admin-agent").status_code == 403


def test_one_loan_for_its_customer_agents_and_admins(customer_api, agent_api, admin_api, new_loan):
    for client in (customer_api, agent_api, admin_api):
        response = client.get(f"/api/loan/{new_loan.id}")
        assert response.status_code == 200
        assert response.json()["data"]["id"] == new_loan.id


def test_another_customers_loan_is_404(other_customer_api, new_loan):
    assert other_customer_api.get(f"/api/loan/{new_loan.id}").status_code == 404
    assert other_customer_api.get(f"/api/loan/{new_loan.id}/schedule").status_code == 404


def test_an_unknown_loan_is_404(admin_api):
    response = admin_api.get("/api/loan/424242")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "loan_not_found"


def test_the_schedule_has_one_row_a_month_ending_at_zero(customer_api, admin_api, new_loan):
    before = customer_api.get(f"/api/loan/{new_loan.id}/schedule").json()["data"]
    services.decide_loan(loan_id=new_loan.id, admin_id=1, status="APPROVED")
    after = customer_api.get(f"/api/loan/{new_loan.id}/schedule").json()["data"]

    assert len(before) == 60
    assert before[0]["due_date"] is None
    assert before[-1]["balance"] == "0.00"
    assert sum(Decimal(row["payment"]) for row in before) == Decimal("245909.22")
    assert after[-1]["due_date"] == admin_api.get(f"/api/loan/{new_loan.id}").json()["data"]["end_date"]


def test_customers_cannot_read_the_history(customer_api, new_loan):
    assert customer_api.get(f"/api/loan/{new_loan.id}/history").status_code == 403


def test_a_quote_saves_nothing(customer_api):
    response = customer_api.json("post", "/api/loan/quote", {"principal": "2500000.00", "months": 120})

    quote = response.json()["data"]
    assert response.status_code == 200
    assert (quote["interest"], quote["emi"], quote["amount"]) == ("12.00", "35867.74", "4304128.21")
    assert quote["total_interest"] == "1804128.21"
    assert len(quote["schedule"]) == 120
    assert results(customer_api.get("/api/loan/list-loans-customer")) == []


def test_a_quote_outside_the_limits_is_400(customer_api):
    response = customer_api.json("post", "/api/loan/quote", {"principal": "100", "months": 12})

    assert response.status_code == 400
    assert "principal" in response.json()["error"]["details"]


def test_health_and_schema_answer(api):
    assert api.get("/health").status_code == 200
    assert api.get("/health/ready").status_code == 200
    assert "/api/loan/customer-loan" in api.get("/openapi.json").content.decode()


def test_the_openapi_document_describes_bodies_replies_and_the_bearer_token(api):
    document = api.get("/openapi.json?format=json").json()

    create = document["paths"]["/api/loan/customer-loan"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    listing = document["paths"]["/api/loan/list-loans-admin-agent"]["get"]
    assert set(document["components"]["schemas"][body]["required"]) == {"customer_id", "principal", "months"}
    assert "201" in create["responses"]
    assert create["security"] == [{"jwtAuth": []}]
    assert {"status", "customer_id", "agent_id", "ordering", "page", "page_size"} <= {
        parameter["name"] for parameter in listing["parameters"]
    }


def test_the_fast_list_shape_is_exactly_the_serializers(admin_api, new_loan):
    from loans.api.serializers import LoanOutput, loan_data

    services.decide_loan(loan_id=new_loan.id, admin_id=1, status="APPROVED")
    new_loan.refresh_from_db()

    assert loan_data(new_loan) == LoanOutput(new_loan).data
    assert results(admin_api.get("/api/loan/list-loans-admin-agent"))[0] == dict(LoanOutput(new_loan).data)


@pytest.mark.parametrize("kept", [0, 1, 50], ids=["count-zero", "count-behind", "count-ahead"])
def test_a_page_holds_the_real_rows_whatever_the_kept_count_says(admin_api, kept):
    loans = make_loans(3)
    LoanStatusCount.objects.filter(status="NEW").update(count=kept)

    first = admin_api.get("/api/loan/list-loans-admin-agent?status=NEW&page_size=2").json()["data"]
    second = admin_api.get("/api/loan/list-loans-admin-agent?status=NEW&page_size=2&page=2").json()["data"]

    newest_first = [loan.id for loan in reversed(loans)]
    assert [loan["id"] for loan in first["results"] + second["results"]] == newest_first
    assert (first["next"], second["next"], second["previous"]) == (2, None, 1)
    assert min(first["count"], second["count"]) >= 3  # never fewer than the rows a client has seen
