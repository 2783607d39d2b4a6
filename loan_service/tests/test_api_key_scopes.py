"""Tokens minted for API keys: loan_service enforces their scopes on every endpoint, the owner's role on top."""

import uuid

import pytest

from common.testing import test_keys
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID, Api

NEW_LOAN = {"customer_id": CUSTOMER_ID, "principal": "200000.00", "months": 60}


def key_api(role: str, user_id: int, *scopes: str) -> Api:
    """A client with the token user_service mints for an API key of `user_id` with `scopes`."""
    token = test_keys.mint(user_id=user_id, role=role, api_key_id=9, scope=" ".join(scopes))
    api = Api()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def refused_for_scope(response, scope: str | None) -> None:
    message = "API keys cannot call this endpoint." if scope is None else f"This API key lacks the scope {scope}."
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert response.json()["error"]["message"] == message


@pytest.mark.django_db
def test_a_read_key_reads_loans_but_cannot_request_one(new_loan):
    api = key_api("agent", AGENT_ID, "loans:read")

    assert api.get(f"/api/loan/{new_loan.id}").status_code == 200
    assert api.get("/api/loan/list-loans-admin-agent").status_code == 200
    refused_for_scope(api.json("post", "/api/loan/customer-loan", NEW_LOAN), "loans:write")


@pytest.mark.django_db
def test_a_write_key_requests_and_edits_loans_as_its_agent(db):
    api = key_api("agent", AGENT_ID, "loans:write")

    created = api.json("post", "/api/loan/customer-loan", NEW_LOAN)

    assert created.status_code == 201
    assert created.json()["data"]["agent_id"] == AGENT_ID
    loan_id = created.json()["data"]["id"]
    assert api.json("put", f"/api/loan/edit-loan/{loan_id}", {"months": 48}).status_code == 200
    refused_for_scope(api.get(f"/api/loan/{loan_id}"), "loans:read")


@pytest.mark.django_db
def test_scopes_never_widen_the_owners_role(new_loan):
    api = key_api("agent", AGENT_ID, "loans:decide", "loans:read")

    response = api.json("put", f"/api/loan/approve-reject-loan/{new_loan.id}", {"status": "APPROVED"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"  # an agent never decides, whatever the key


@pytest.mark.django_db
def test_decisions_and_repayments_need_their_own_scopes(new_loan):
    reader = key_api("admin", ADMIN_ID, "loans:read", "repayments:write")
    decider = key_api("admin", ADMIN_ID, "loans:decide")

    refused_for_scope(
        reader.json("put", f"/api/loan/approve-reject-loan/{new_loan.id}", {"status": "APPROVED"}), "loans:decide"
    )
    assert (
        decider.json("put", f"/api/loan/approve-reject-loan/{new_loan.id}", {"status": "APPROVED"}).status_code == 200
    )
    refused_for_scope(
        decider.post(f"/api/loan/{new_loan.id}/repayments", {"amount": "10.00"}, format="json",
                     HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())),
        "repayments:write",
    )  # fmt: skip


@pytest.mark.django_db
def test_endpoints_that_name_no_scope_refuse_every_key(db):
    api = key_api("admin", ADMIN_ID, "loans:read", "loans:write", "loans:decide")

    refused_for_scope(api.get("/api/loan/audit"), None)


@pytest.mark.django_db
def test_a_persons_token_is_not_limited_by_scopes(new_loan, customer_api):
    assert customer_api.get(f"/api/loan/{new_loan.id}").status_code == 200
    assert Api().as_role("admin", ADMIN_ID).get("/api/loan/audit").status_code == 200
