"""Each endpoint's failure codes not covered elsewhere, and the list filters that narrow by search and approval."""

import pytest

from tests.factories import UserFactory
from users.models import Approval, Role, User


def error(response) -> dict:
    return response.json()["error"]


# --------------------------------------------------------------------------- token refresh


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"refresh": ""}, None], ids=["no-refresh", "blank", "no-body"])
def test_refresh_without_a_token_in_the_body_is_400(api, body):
    response = api.post("/api/user/token/refresh", body, format="json")

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert "refresh" in error(response)["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."], ids=["word", "parts", "alg-none"])
def test_refresh_with_a_garbage_token_is_401(api, token):
    response = api.post("/api/user/token/refresh", {"refresh": token}, format="json")

    assert response.status_code == 401
    assert error(response)["code"] == "token_revoked"


# --------------------------------------------------------------------------- create-admin


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["taken@example.com", "TAKEN@Example.com"], ids=["same", "other-case"])
def test_create_admin_with_a_taken_email_is_409(api, admin, email):
    UserFactory(email="taken@example.com")

    response = api.as_user(admin).post(
        "/api/user/create-admin", {"email": email, "password": "very-Strong-99"}, format="json"
    )

    assert response.status_code == 409
    assert error(response)["code"] == "email_taken"
    assert User.objects.filter(role=Role.ADMIN).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["12345678", "password", "short1"], ids=["numeric", "common", "short"])
def test_create_admin_with_a_weak_password_is_400(api, admin, password):
    response = api.as_user(admin).post(
        "/api/user/create-admin", {"email": "new.admin@example.com", "password": password}, format="json"
    )

    assert response.status_code == 400
    assert "password" in error(response)["details"]
    assert not User.objects.filter(email="new.admin@example.com").exists()


# --------------------------------------------------------------------------- approve-delete, list-approvals


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["customer", "agent", "pending_agent"])
def test_only_admins_delete_agents(api, request, caller):
    target = UserFactory(role=Role.AGENT, approval=Approval.APPROVED)

    response = api.as_user(request.getfixturevalue(caller)).delete(f"/api/user/approve-delete/{target.id}")

    assert response.status_code == 403
    target.refresh_from_db()
    assert target.is_active is True


@pytest.mark.django_db
def test_deleting_an_unknown_id_is_404(api, admin):
    response = api.as_user(admin).delete("/api/user/approve-delete/999999")

    assert response.status_code == 404
    assert error(response)["code"] == "user_not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["agent", "pending_agent", "customer"])
def test_list_approvals_is_403_for_anyone_but_an_admin(api, request, caller):
    response = api.as_user(request.getfixturevalue(caller)).get("/api/user/list-approvals")

    assert response.status_code == 403


# --------------------------------------------------------------------------- list-users filters


@pytest.mark.django_db
@pytest.mark.parametrize("search", ["zelda", "QUILL", "zq@exam"], ids=["first-name", "last-name-any-case", "email"])
def test_list_users_searches_email_and_names(api, admin, customer, search):
    zelda = UserFactory(email="zq@example.com", first_name="Zelda", last_name="Quill")

    data = api.as_user(admin).get(f"/api/user/list-users?search={search}").json()["data"]

    assert [user["id"] for user in data["results"]] == [zelda.id]


@pytest.mark.django_db
def test_list_users_filters_approved_users(api, admin, customer, agent, pending_agent):
    data = api.as_user(admin).get("/api/user/list-users?is_approved=true").json()["data"]

    assert {user["id"] for user in data["results"]} == {admin.id, customer.id, agent.id}


@pytest.mark.django_db
def test_list_users_rejects_an_unclear_approval_filter(api, admin):
    response = api.as_user(admin).get("/api/user/list-users?is_approved=maybe")

    assert response.status_code == 400
    assert "is_approved" in error(response)["details"]


# --------------------------------------------------------------------------- change-password


@pytest.mark.django_db
def test_change_password_without_a_token_is_401(api, customer):
    response = api.post(
        "/api/user/change-password", {"old_password": "x", "new_password": "new-Secret-42x"}, format="json"
    )

    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"
