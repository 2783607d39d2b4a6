"""Logout's failure codes, revocation that outlives a refused refresh, and a rejected agent's 403."""

import json

import pytest

from tests.factories import PASSWORD
from users.models import Approval, Role

LOGIN = "/api/user/login"
LOGOUT = "/api/user/logout"
REFRESH = "/api/user/token/refresh"


def login(api, user) -> dict:
    response = api.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    return response.json()["data"]


@pytest.mark.django_db
def test_logout_with_an_already_revoked_refresh_is_400_not_a_sign_in_again(api, customer):
    tokens = login(api, customer)
    api.as_token(tokens["access"]).post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    again = api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert again.status_code == 400
    assert again.json()["error"]["code"] == "refresh_token_already_revoked"
    assert "refresh" in again.json()["error"]["details"]
    assert api.get("/api/user/profile").status_code == 200  # still signed in


@pytest.mark.django_db
@pytest.mark.parametrize("refresh", ["not-a-token", "a.b.c"], ids=["garbage", "three-garbage-parts"])
def test_logout_with_an_invalid_refresh_is_400(api, customer, refresh):
    response = api.as_user(customer).post(LOGOUT, {"refresh": refresh}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_refresh_token"


@pytest.mark.django_db
def test_logout_with_an_access_token_in_the_body_is_400(api, customer):
    tokens = login(api, customer)

    response = api.as_token(tokens["access"]).post(LOGOUT, {"refresh": tokens["access"]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_refresh_token"


@pytest.mark.django_db
def test_logout_without_a_token_is_401(api, customer):
    refresh = login(api, customer)["refresh"]

    response = api.post(LOGOUT, {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert api.post(REFRESH, {"refresh": refresh}, format="json").status_code == 200  # nothing was revoked


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ({}, "application/json", 400, "validation_error"),
        ({"refresh": ""}, "application/json", 400, "validation_error"),
        ({"refresh": 12}, "application/json", 400, "invalid_refresh_token"),
        ("{not json", "application/json", 400, "malformed_json"),
        ("refresh=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
    ids=["no-refresh", "blank-refresh", "number", "not-json", "form-body"],
)
def test_logout_with_a_bad_body(api, customer, body, content_type, status, code):
    api.as_user(customer)
    data = body if isinstance(body, str) else json.dumps(body)

    response = api.post(LOGOUT, data, content_type=content_type)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db
def test_a_refused_refresh_token_stays_revoked_when_the_change_is_undone(api, agent):
    refresh = login(api, agent)["refresh"]
    agent.role, agent.approval = Role.CUSTOMER, Approval.APPROVED
    agent.save()
    refused = api.post(REFRESH, {"refresh": refresh}, format="json")

    agent.role = Role.AGENT  # the demotion is undone
    agent.save()
    retried = api.post(REFRESH, {"refresh": refresh}, format="json")

    assert refused.status_code == 401
    assert retried.status_code == 401
    assert retried.json()["error"]["code"] == "token_revoked"


@pytest.mark.django_db
def test_rejected_agent_with_a_still_valid_access_token_gets_agent_rejected(api, admin, pending_agent):
    access = login(api, pending_agent)["access"]
    api.as_user(admin).put(f"/api/user/approve-delete/{pending_agent.id}", {"action": "reject"}, format="json")

    response = api.as_token(access).get("/api/user/list-agents")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_rejected"


@pytest.mark.django_db
def test_waiting_agent_still_gets_agent_not_approved(api, pending_agent):
    response = api.as_user(pending_agent).get("/api/user/list-agents")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"
