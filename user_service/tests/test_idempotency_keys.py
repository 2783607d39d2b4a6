"""Idempotency-Key in user_service: replies with tokens are never stored; other writes are replayed per user."""

import pytest

from common.idempotency.models import IdempotencyKey
from tests.factories import PASSWORD

LOGIN = "/api/user/login"


@pytest.mark.django_db
def test_a_login_with_an_idempotency_key_is_not_stored(api, customer):
    def login():
        body = {"email": customer.email, "password": PASSWORD}
        return api.post(LOGIN, body, format="json", HTTP_IDEMPOTENCY_KEY="login-1")

    first = login()
    second = login()

    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second.headers
    assert first.json()["data"]["refresh"] != second.json()["data"]["refresh"]
    assert first.json()["data"]["access"] != second.json()["data"]["access"]
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_a_signed_in_users_write_with_a_key_is_replayed_in_their_scope(api, customer):
    def rename(name):
        return api.as_user(customer).put(
            "/api/user/profile", {"first_name": name}, format="json", HTTP_IDEMPOTENCY_KEY="k"
        )

    first = rename("Ann")
    again = rename("Ann")

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert rename("Bea").status_code == 422
    assert IdempotencyKey.objects.get().scope == f"user:{customer.id}"
