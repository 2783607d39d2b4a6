"""The OpenAPI document states every operation's body and reply, and a real reply matches what it states."""

import pytest

from common.schema_testing import assert_documented, document_faults, resolved
from tests.factories import PASSWORD, UserFactory, give_totp
from users.models import Role


@pytest.fixture
def document(api):
    return api.get("/openapi.json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_the_document_generates_with_no_error_and_no_faulty_warning():
    assert document_faults() == []


@pytest.mark.django_db
def test_login_reply_is_the_documented_one(api, document, customer):
    response = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert_documented(document, "/api/user/login", "post", response)


@pytest.mark.django_db
def test_login_challenge_for_a_second_factor_is_documented(api, document, customer):
    give_totp(customer)

    response = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json")

    assert response.json()["data"]["mfa_required"] is True
    assert_documented(document, "/api/user/login", "post", response)


@pytest.mark.django_db
def test_login_challenge_to_set_a_factor_up_is_documented(api, document):
    admin = UserFactory(role=Role.ADMIN, is_staff=True)

    response = api.post("/api/user/login", {"email": admin.email, "password": PASSWORD}, format="json")

    assert response.json()["data"]["mfa_enrolment_required"] is True
    assert_documented(document, "/api/user/login", "post", response)


@pytest.mark.django_db
def test_login_second_step_reply_is_documented(api, document, customer):
    next_code = give_totp(customer)
    challenge = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json")

    response = api.post(
        "/api/user/login/mfa", {"challenge": challenge.json()["data"]["challenge"], "code": next_code()}, format="json"
    )

    assert response.status_code == 200
    assert_documented(document, "/api/user/login/mfa", "post", response)


@pytest.mark.django_db
def test_token_refresh_reply_is_documented(api, document, customer):
    tokens = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json")

    response = api.post("/api/user/token/refresh", {"refresh": tokens.json()["data"]["refresh"]}, format="json")

    assert response.status_code == 200
    assert_documented(document, "/api/user/token/refresh", "post", response)


@pytest.mark.django_db
def test_sessions_list_reply_is_documented(api, document, customer):
    response = api.as_user(customer).get("/api/user/sessions")

    assert response.status_code == 200
    assert response.json()["data"]["results"]
    assert_documented(document, "/api/user/sessions", "get", response)


@pytest.mark.django_db
def test_sign_out_of_other_sessions_reply_is_documented(api, document, customer):
    response = api.as_user(customer).delete("/api/user/sessions")

    assert response.status_code == 200
    assert_documented(document, "/api/user/sessions", "delete", response)


@pytest.mark.django_db
def test_change_password_reply_is_documented(api, document, customer):
    body = {"old_password": PASSWORD, "new_password": "another-Horse-8"}

    response = api.as_user(customer).post("/api/user/change-password", body, format="json")

    assert response.status_code == 200
    assert_documented(document, "/api/user/change-password", "post", response)


@pytest.mark.django_db
def test_totp_set_up_reply_is_documented(api, document, customer):
    response = api.as_user(customer).post("/api/user/mfa/totp", format="json")

    assert response.status_code == 201
    assert_documented(document, "/api/user/mfa/totp", "post", response)


def test_login_documents_the_body_it_validates(document):
    body = document["paths"]["/api/user/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    schema = resolved(document, body)

    assert set(schema["properties"]) == {"email", "password"}
    assert sorted(schema["required"]) == ["email", "password"]
    assert schema["properties"]["email"]["maxLength"] == 254


def test_signup_documents_the_roles_it_accepts(document):
    body = document["paths"]["/api/user/signup"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    role = resolved(document, resolved(document, body)["properties"]["role"])

    assert sorted(role["enum"]) == ["agent", "customer"]


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/user/sessions/{session_id}", "delete"), ("/api/user/approve-delete/{user_id}", "delete")],
    ids=["sign-out-one-session", "delete-agent"],
)
def test_deletions_are_documented_as_204_without_a_body(document, path, method):
    responses = document["paths"][path][method]["responses"]

    assert "204" in responses
    assert "content" not in responses["204"]
    assert not [status for status in responses if status.startswith("2") and status != "204"]
