"""The generated OpenAPI document states the envelope, every error status with its codes, and the headers."""

import pytest

from common.errors import ErrorCode
from common.schema_testing import document_faults
from loans.errors import LoanErrorCode

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(api):
    return api.get("/openapi.json?format=json").json()


def operations(document):
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def codes(reply):
    return reply["content"]["application/json"]["schema"]["properties"]["error"]["properties"]["code"]["enum"]


def test_the_document_generates_with_no_error_and_no_faulty_warning():
    assert document_faults() == []


def test_every_json_success_reply_is_the_envelope_around_the_data(document):
    checked = 0
    for path, method, operation in operations(document):
        for status, reply in operation["responses"].items():
            schema = reply.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith("2") and schema is not None:
                assert schema["required"] == ["success", "data"], (method, path)
                assert schema["properties"]["success"] == {"type": "boolean", "enum": [True]}
                checked += 1
    assert checked >= 20


def test_every_operation_lists_its_error_statuses_in_the_failure_envelope(document):
    for path, method, operation in operations(document):
        replies = operation["responses"]
        expected = {"429", "503", "401", "403"}  # every loan_service operation takes a token
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        assert expected <= set(replies), (method, path, sorted(replies))
        for status, reply in replies.items():
            assert "X-Correlation-ID" in reply["headers"], (method, path, status)
            if not status.startswith("2"):
                schema = reply["content"]["application/json"]["schema"]
                assert schema["required"] == ["success", "error", "correlation_id"]
                assert codes(reply), (method, path, status)
        assert "Retry-After" in replies["429"]["headers"]


def test_the_codes_are_the_ones_the_service_answers_with(document):
    decide = document["paths"]["/api/loan/approve-reject-loan/{loan_id}"]["put"]["responses"]
    repay = document["paths"]["/api/loan/{loan_id}/repayments"]["post"]["responses"]

    assert LoanErrorCode.ALREADY_DECIDED in codes(decide["409"])
    assert LoanErrorCode.LOAN_NOT_FOUND in codes(decide["404"])
    assert ErrorCode.VALIDATION_ERROR in codes(decide["400"])
    assert ErrorCode.PERMISSION_DENIED in codes(decide["403"])
    assert {ErrorCode.IDEMPOTENCY_KEY_REQUIRED, ErrorCode.INVALID_IDEMPOTENCY_KEY} <= set(codes(repay["400"]))
    assert codes(repay["422"]) == [ErrorCode.IDEMPOTENCY_KEY_REUSED]
    assert ErrorCode.IDEMPOTENCY_REQUEST_IN_PROGRESS in codes(repay["409"])


def test_a_documented_error_is_the_one_the_service_gives(api, document):
    reply = api.get("/api/loan/list-loans-customer")  # no token

    documented = document["paths"]["/api/loan/list-loans-customer"]["get"]["responses"][str(reply.status_code)]
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] in codes(documented)
    assert set(reply.json()) == {"success", "error", "correlation_id"}
