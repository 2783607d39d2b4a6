"""Who may call each loan endpoint, and the failure codes: 401, 403, 404, 415."""

import pytest

from loans import services
from tests.conftest import ADMIN_ID, PENDING_AGENT_ID

pytestmark = pytest.mark.django_db
UNKNOWN_ID = 424242


def endpoints(loan_id: int) -> dict[str, tuple[str, str, dict | None]]:
    """Every /api/loan/ endpoint: method, path and a body that would otherwise be accepted."""
    return {
        "create": ("post", "/api/loan/customer-loan", {"customer_id": 3, "principal": "50000.00", "months": 12}),
        "decide": ("put", f"/api/loan/approve-reject-loan/{loan_id}", {"status": "APPROVED"}),
        "edit": ("put", f"/api/loan/edit-loan/{loan_id}", {"months": 12}),
        "list-all": ("get", "/api/loan/list-loans-admin-agent", None),
        "list-own": ("get", "/api/loan/list-loans-customer", None),
        "detail": ("get", f"/api/loan/{loan_id}", None),
        "schedule": ("get", f"/api/loan/{loan_id}/schedule", None),
        "history": ("get", f"/api/loan/{loan_id}/history", None),
        "quote": ("post", "/api/loan/quote", {"principal": "50000.00", "months": 12}),
    }


ENDPOINTS = list(endpoints(0))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_no_token_is_401_everywhere(api, new_loan, endpoint):
    method, path, body = endpoints(new_loan.id)[endpoint]

    response = api.json(method, path, body)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("endpoint", ["detail", "schedule", "history"])
def test_an_agent_waiting_for_approval_gets_403_agent_not_approved(api, new_loan, endpoint):
    method, path, _ = endpoints(new_loan.id)[endpoint]

    response = api.as_role("agent", PENDING_AGENT_ID, is_approved=False).json(method, path)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"


def test_an_approved_agent_reads_the_history(agent_api, new_loan):
    response = agent_api.get(f"/api/loan/{new_loan.id}/history")

    assert response.status_code == 200
    assert [entry["change"] for entry in response.json()["data"]] == ["created"]


@pytest.mark.parametrize("endpoint", ["schedule", "history"])
def test_an_unknown_loan_is_404(admin_api, endpoint):
    method, path, _ = endpoints(UNKNOWN_ID)[endpoint]

    response = admin_api.json(method, path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "loan_not_found"


@pytest.mark.parametrize(("endpoint", "role"), [("decide", "admin"), ("edit", "agent"), ("quote", "customer")])
def test_a_body_that_is_not_json_is_415(api, new_loan, endpoint, role):
    method, path, _ = endpoints(new_loan.id)[endpoint]
    client = api.as_role(role, 7)

    response = getattr(client, method)(path, "months=12", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_a_rejection_reads_as_a_rejected_history_entry(admin_api, new_loan):
    services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="REJECTED", note="Income too low")

    entries = admin_api.get(f"/api/loan/{new_loan.id}/history").json()["data"]

    rejected = entries[-1]
    assert [entry["change"] for entry in entries] == ["created", "rejected"]
    assert (rejected["changed_by"], rejected["status"]) == (ADMIN_ID, "REJECTED")
    assert rejected["fields"]["status"] == ["NEW", "REJECTED"]
    assert rejected["fields"]["decision_note"] == ["", "Income too low"]
    assert rejected["fields"]["decided_by"] == [None, ADMIN_ID]
    assert "start_date" not in rejected["fields"]
