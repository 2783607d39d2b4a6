"""POST /api/loan/customer-loan: who may, what is checked, and that nothing is half-written."""

import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.outbox.models import OutboxMessage
from loans.models import Loan
from tests.conftest import AGENT_ID, CUSTOMER_ID, PENDING_AGENT_ID

URL = "/api/loan/customer-loan"
BODY = {"customer_id": CUSTOMER_ID, "principal": "1000000.00", "months": 60}


@pytest.mark.django_db
def test_approved_agent_creates_a_new_loan_with_the_policy_rate(agent_api, user_service_server):
    response = agent_api.json("post", URL, BODY)

    assert response.status_code == 201
    loan = response.json()["data"]
    assert loan["status"] == "NEW"
    assert (loan["customer_id"], loan["agent_id"]) == (CUSTOMER_ID, AGENT_ID)
    assert (loan["principal"], loan["interest"], loan["months"]) == ("1000000.00", "10.00", 60)
    assert (loan["emi"], loan["amount"], loan["total_interest"]) == ("21247.04", "1274822.84", "274822.84")
    assert loan["start_date"] is None
    assert loan["decided_by"] is None
    assert user_service_server.calls[0]["path"] == f"/internal/users/{CUSTOMER_ID}"


@pytest.mark.django_db
def test_the_trailing_slash_is_optional(agent_api):
    assert agent_api.json("post", URL + "/", BODY).status_code == 201


@pytest.mark.django_db
def test_created_loan_publishes_exactly_one_event(agent_api):
    loan_id = agent_api.json("post", URL, BODY).json()["data"]["id"]

    rows = list(OutboxMessage.objects.all())
    assert [row.name for row in rows] == ["loan.created"]
    payload = rows[0].message["payload"]
    assert (payload["loan_id"], payload["customer_id"], payload["agent_id"]) == (loan_id, CUSTOMER_ID, AGENT_ID)
    assert payload["amount"] == "1274822.84"


@pytest.mark.django_db
def test_correlation_id_travels_onto_the_event(agent_api):
    agent_api.post(URL, BODY, format="json", HTTP_X_CORRELATION_ID="corr-123")

    assert OutboxMessage.objects.get().message["correlation_id"] == "corr-123"


@pytest.mark.django_db
def test_agent_waiting_for_approval_gets_403(api):
    response = api.as_role("agent", PENDING_AGENT_ID, is_approved=False).json("post", URL, BODY)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"
    assert not Loan.objects.exists()


@pytest.mark.parametrize("role", ["customer", "admin"])
@pytest.mark.django_db
def test_other_roles_get_403(api, role):
    assert api.as_role(role, 50).json("post", URL, BODY).status_code == 403


@pytest.mark.django_db
def test_without_a_token_401(api):
    response = api.json("post", URL, BODY)

    assert response.status_code == 401
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": 999}, "customer_id"),
        ({"customer_id": 7}, "customer_id"),  # an agent, not a customer
        ({"principal": "9999.99"}, "principal"),
        ({"principal": "100000000.01"}, "principal"),
        ({"principal": "-5"}, "principal"),
        ({"principal": "12.345"}, "principal"),
        ({"principal": "lots"}, "principal"),
        ({"months": 0}, "months"),
        ({"months": 481}, "months"),
        ({"months": "twelve"}, "months"),
        ({"customer_id": None}, "customer_id"),
    ],
    ids=lambda value: str(value),
)
@pytest.mark.django_db
def test_bad_input_is_400_naming_the_field(agent_api, change, field):
    response = agent_api.json("post", URL, {**BODY, **change})

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Loan.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_missing_fields_are_400(agent_api):
    response = agent_api.json("post", URL, {})

    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"customer_id", "principal", "months"}


@pytest.mark.django_db
def test_not_json_is_415_and_broken_json_is_400(agent_api):
    assert agent_api.post(URL, "customer_id=3", content_type="application/x-www-form-urlencoded").status_code == 415
    assert agent_api.post(URL, "{not json", content_type="application/json").status_code == 400


@pytest.mark.django_db
def test_user_service_down_is_503_and_nothing_is_saved(agent_api, settings):
    settings.USER_SERVICE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port

    response = agent_api.json("post", URL, BODY)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert not Loan.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_created_loan_has_a_created_history_entry_by_the_agent(agent_api):
    loan_id = agent_api.json("post", URL, BODY).json()["data"]["id"]

    record = Loan.objects.get(pk=loan_id).history.get()
    assert (record.history_type, record.history_user_id, record.history_change_reason) == ("+", AGENT_ID, "created")
    assert record.principal == Decimal("1000000.00")


class _NotFoundHandler(BaseHTTPRequestHandler):
    """Answers every request with the 404 body the server was given: another service, a proxy, a bad path."""

    def do_GET(self):
        body, content_type = self.server.not_found  # type: ignore[attr-defined]
        self.send_response(404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


NOT_FOUND_REPLIES = {
    "plain-html": (b"<h1>Not Found</h1>", "text/html"),
    "envelope-other-code": (b'{"success": false, "error": {"code": "not_found"}}', "application/json"),
    "json-not-envelope": (b'{"detail": "Not found."}', "application/json"),
}


@pytest.fixture(params=NOT_FOUND_REPLIES)
def misrouted_user_service(request, settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFoundHandler)
    server.not_found = NOT_FOUND_REPLIES[request.param]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.USER_SERVICE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_a_404_that_is_not_user_services_user_not_found_is_503(agent_api, misrouted_user_service):
    response = agent_api.json("post", URL, BODY)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert not Loan.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_user_services_user_not_found_is_400_on_customer_id(agent_api, user_service_server):
    response = agent_api.json("post", URL, {**BODY, "customer_id": 999})

    assert response.status_code == 400
    assert response.json()["error"]["details"]["customer_id"] == ["No customer has this id."]
    assert user_service_server.calls[-1]["path"] == "/internal/users/999"
