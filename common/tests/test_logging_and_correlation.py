"""JSON logs, one object per line, and the correlation id that ties a request's lines together."""

import logging
import re

import pytest

from common.correlation import accept_or_new, correlation_scope, get_correlation_id

pytestmark = pytest.mark.django_db


def test_a_log_line_is_one_json_object_with_the_project_fields(json_logs):
    with correlation_scope("corr-42"):
        logging.getLogger("lms.test").info("loan %s decided", 12, extra={"loan_id": 12, "status": "APPROVED"})

    [line] = json_logs()
    assert (line["level"], line["service"], line["correlation_id"]) == ("INFO", "common_tests", "corr-42")
    assert (line["message"], line["loan_id"], line["status"]) == ("loan 12 decided", 12, "APPROVED")
    assert line["logger"] == "lms.test"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line["time"])


def test_a_multi_line_message_and_a_traceback_stay_on_one_line(json_logs):
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logging.getLogger("lms.test").exception("first\nsecond")

    [line] = json_logs()
    assert line["message"] == "first\nsecond"
    assert "ValueError: bad" in line["exc_info"]


def test_outside_a_request_the_correlation_id_is_empty(json_logs):
    logging.getLogger("lms.test").warning("at start-up")

    assert json_logs()[0]["correlation_id"] == ""


def test_every_line_of_a_request_carries_the_id_the_response_returns(api, json_logs):
    response = api.post("/echo", {"amount": "5"}, format="json")

    lines = json_logs()
    view_line = next(line for line in lines if line["message"] == "echoed")
    access_line = next(line for line in lines if line["logger"] == "lms.access")
    assert response.status_code == 200
    assert view_line["correlation_id"] == access_line["correlation_id"] == response["X-Correlation-ID"]
    assert (access_line["method"], access_line["path"], access_line["status"]) == ("POST", "/echo", 200)
    assert access_line["duration_ms"] >= 0


def test_the_access_log_names_the_signed_in_user(api, json_logs):
    api.as_role("customer", user_id=77).get("/customer")

    access_line = next(line for line in json_logs() if line["logger"] == "lms.access")
    assert access_line["user_id"] == 77


def test_the_clients_correlation_id_is_kept_and_logged(api, json_logs):
    response = api.get("/health", HTTP_X_CORRELATION_ID="client-id-1")

    assert response["X-Correlation-ID"] == "client-id-1"
    assert [line["correlation_id"] for line in json_logs() if line["logger"] == "lms.access"] == ["client-id-1"]


def test_a_new_correlation_id_is_made_for_each_request_without_one(api):
    first = api.get("/health")["X-Correlation-ID"]
    second = api.get("/health")["X-Correlation-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize(
    "unsafe",
    ["bad id\nwith newline", '"}, {"injected": 1', "x" * 129, "a b"],
    ids=["newline", "json", "too-long", "space"],
)
def test_an_unsafe_client_id_is_replaced(api, unsafe):
    response = api.get("/health", HTTP_X_CORRELATION_ID=unsafe)

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Correlation-ID"])


def test_the_longest_acceptable_client_id_is_kept():
    assert accept_or_new("a" * 128) == "a" * 128


@pytest.mark.parametrize("trailing", ["\n", "\r\n"], ids=["newline", "crlf"])
def test_a_client_id_with_a_trailing_line_break_is_replaced(trailing):
    candidate = f"client-id-1{trailing}"

    assert re.fullmatch(r"[0-9a-f]{32}", accept_or_new(candidate))


def test_errors_carry_the_correlation_id_too(api):
    response = api.get("/no/such/page", HTTP_X_CORRELATION_ID="trace-404")

    assert response["X-Correlation-ID"] == "trace-404"
    assert response.json()["correlation_id"] == "trace-404"


def test_the_id_does_not_leak_past_its_request_or_scope(api):
    api.get("/health", HTTP_X_CORRELATION_ID="request-scoped")
    assert get_correlation_id() == ""

    with correlation_scope("outer"):
        with correlation_scope(""):
            inner = get_correlation_id()
        assert get_correlation_id() == "outer"
    assert re.fullmatch(r"[0-9a-f]{32}", inner)
