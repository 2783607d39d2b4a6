"""Every 4xx and 5xx is the API.md envelope: stable code, message, details, correlation id; never HTML or a trace."""

import pytest

pytestmark = pytest.mark.django_db


def envelope_error(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"success", "error", "correlation_id"}
    assert body["success"] is False
    assert body["correlation_id"] == response["X-Correlation-ID"]
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("parse", 400, "malformed_json"),
        ("non-field-validation", 400, "validation_error"),
        ("authentication-failed", 401, "invalid_token"),
        ("not-authenticated", 401, "not_authenticated"),
        ("permission-denied", 403, "permission_denied"),
        ("django-permission-denied", 403, "permission_denied"),
        ("drf-not-found", 404, "not_found"),
        ("http404", 404, "not_found"),
        ("not-acceptable", 406, "not_acceptable"),
        ("domain", 409, "loan_not_editable"),
        ("data-too-big", 413, "payload_too_large"),
        ("unsupported-media", 415, "unsupported_media_type"),
        ("other-api-exception", 418, "teapot"),
        ("throttled", 429, "rate_limited"),
        ("database-down", 503, "database_unavailable"),
    ],
)
def test_each_error_a_view_raises_becomes_the_envelope(api, kind, status, code):
    response = api.get(f"/raise/{kind}")

    assert response.status_code == status
    assert envelope_error(response)["code"] == code


def test_a_domain_error_carries_its_own_message(api):
    error = envelope_error(api.get("/raise/domain"))

    assert error["message"] == "An approved loan cannot be edited."


def test_internal_reasons_do_not_reach_the_client(api):
    for kind in ("http404", "django-permission-denied", "database-down"):
        response = api.get(f"/raise/{kind}")
        assert b"loans_loan" not in response.content
        assert b"internal reason" not in response.content
        assert b"10.0.0.5" not in response.content


def test_rate_limited_says_when_to_retry(api):
    response = api.get("/raise/throttled")

    assert response["Retry-After"] == "4"


def test_a_real_throttle_answers_429_in_the_envelope(api):
    assert [api.get("/throttled").status_code for _ in range(2)] == [200, 200]

    response = api.get("/throttled")

    assert response.status_code == 429
    assert envelope_error(response)["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1


def test_validation_errors_name_each_field(api):
    response = api.post("/echo", {"amount": "0"}, format="json")

    assert response.status_code == 400
    error = envelope_error(response)
    assert error["code"] == "validation_error"
    assert error["details"] == {"amount": ["Ensure this value is greater than or equal to 1."]}


def test_a_missing_field_is_named(api):
    error = envelope_error(api.post("/echo", {}, format="json"))

    assert error["details"] == {"amount": ["This field is required."]}


def test_a_domain_error_names_its_field(api):
    response = api.post("/echo/", {"amount": "13"}, format="json")

    assert response.status_code == 400
    assert envelope_error(response)["details"] == {"amount": ["Unlucky."]}


def test_errors_without_a_field_are_non_field_errors(api):
    error = envelope_error(api.get("/raise/non-field-validation"))

    assert error["details"] == {"non_field_errors": ["Dates are in the wrong order."]}


def test_nested_field_errors_are_flattened_to_dotted_names(api):
    response = api.post("/nested", {"address": {}, "lines": [{"sku": "a"}, {}]}, format="json")

    assert response.status_code == 400
    assert envelope_error(response)["details"] == {
        "address.city": ["This field is required."],
        "lines.1.sku": ["This field is required."],
    }


def test_malformed_json_is_400(api):
    response = api.post("/echo", "{oops", content_type="application/json")

    assert response.status_code == 400
    assert envelope_error(response)["code"] == "malformed_json"


def test_a_body_that_is_not_json_is_415(api):
    response = api.post("/echo", "amount=3", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert envelope_error(response)["code"] == "unsupported_media_type"


def test_asking_for_html_is_406_in_json(api):
    response = api.get("/raise/drf-not-found", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert envelope_error(response)["code"] == "not_acceptable"


def test_unknown_urls_are_404_in_the_envelope(api):
    response = api.get("/no/such/page")

    assert response.status_code == 404
    assert envelope_error(response) == {"code": "not_found", "message": "Not found.", "details": {}}


def test_method_not_allowed_is_405_in_the_envelope(api):
    response = api.delete("/echo")

    assert response.status_code == 405
    assert envelope_error(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/boom", "/plain/boom"], ids=["drf-view", "plain-django-view"])
def test_an_unexpected_error_is_500_without_internals(api, path, json_logs):
    response = api.get(path)

    assert response.status_code == 500
    assert envelope_error(response)["code"] == "internal_error"
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content
    assert any("secret internals" in line.get("exc_info", "") for line in json_logs())  # kept for operators


def test_a_plain_django_permission_error_is_403_in_the_envelope(api):
    response = api.get("/plain/forbidden")

    assert response.status_code == 403
    assert envelope_error(response)["code"] == "permission_denied"


def test_a_suspicious_request_is_400_in_the_envelope(api):
    response = api.get("/plain/suspicious")

    assert response.status_code == 400
    assert envelope_error(response)["code"] == "validation_error"
    assert b"tampered" not in response.content


def test_a_body_over_the_limit_is_413_before_the_view_runs(api, json_logs):
    response = api.post("/echo", {"amount": "1" * 2000}, format="json")

    assert response.status_code == 413
    assert envelope_error(response)["code"] == "payload_too_large"
    assert not [line for line in json_logs() if line["message"] == "echoed"]


def test_a_body_at_the_limit_is_accepted(api, settings):
    body = b'{"amount": "5"}'
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)

    assert api.post("/echo", body, content_type="application/json").status_code == 200
    assert api.post("/echo", body + b" ", content_type="application/json").status_code == 413


def test_views_are_signed_in_only_by_default(api):
    response = api.get("/defaults")

    assert response.status_code == 401
    assert envelope_error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_decimals_leave_as_strings(api):
    response = api.as_role("customer").get("/defaults")

    assert response.json() == {"success": True, "data": {"price": "12.50"}}


def test_a_successful_reply_is_the_success_envelope(api):
    response = api.post("/echo", {"amount": "7.5"}, format="json")

    assert response.json() == {"success": True, "data": {"amount": "7.50"}}
