import pytest

from common.outbox.models import OutboxMessage
from users.models import User

SIGNUP = "/api/user/signup"


def body(**overrides):
    return {
        "email": "ann@example.com",
        "password": "correct-Horse-7",
        "first_name": "Ann",
        "last_name": "Lee",
        "role": "customer",
        **overrides,
    }


@pytest.mark.django_db
def test_customer_signup_is_approved_at_once(api):
    response = api.post(SIGNUP, body(), format="json")

    assert response.status_code == 201
    data = response.json()["data"]
    assert data["email"] == "ann@example.com"
    assert data["role"] == "customer"
    assert data["is_approved"] is True
    assert set(data) == {"id", "email", "first_name", "last_name", "role", "is_approved", "created_at"}
    assert response["X-Correlation-ID"]


@pytest.mark.django_db
def test_agent_signup_waits_for_approval(api):
    response = api.post(SIGNUP, body(role="agent"), format="json")

    assert response.status_code == 201
    assert response.json()["data"]["is_approved"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/user/signup", "/api/user/signup/"], ids=["no-slash", "slash"])
def test_signup_works_with_and_without_trailing_slash(api, path):
    assert api.post(path, body(), format="json").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin", "superuser", ""], ids=["admin", "unknown", "blank"])
def test_signup_refuses_other_roles(api, role):
    response = api.post(SIGNUP, body(role=role), format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "role" in response.json()["error"]["details"]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_duplicate_email_is_409_case_insensitively(api):
    api.post(SIGNUP, body(), format="json")

    response = api.post(SIGNUP, body(email="ANN@Example.com"), format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short1", "password123", "12345678901", "annlee-ann"], ids=str)
def test_weak_password_is_400_on_password(api, password):
    response = api.post(SIGNUP, body(password=password, email="annlee@example.com"), format="json")

    assert response.status_code == 400
    assert "password" in response.json()["error"]["details"]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_missing_fields_are_named(api):
    response = api.post(SIGNUP, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) >= {"email", "password", "role"}


@pytest.mark.django_db
def test_non_json_body_is_415(api):
    response = api.post(SIGNUP, "email=a@b.c", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_malformed_json_is_400(api):
    response = api.post(SIGNUP, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "malformed_json"


@pytest.mark.django_db
def test_body_over_the_limit_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = api.post(SIGNUP, body(first_name="x" * 5000), format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.django_db
def test_signup_publishes_user_registered_in_the_outbox(api):
    response = api.post(SIGNUP, body(), format="json", HTTP_X_CORRELATION_ID="corr-signup-1")

    message = OutboxMessage.objects.get()
    assert message.name == "user.registered"
    assert message.message["correlation_id"] == "corr-signup-1"
    assert message.message["payload"]["user_id"] == response.json()["data"]["id"]
    assert message.message["payload"]["email"] == "ann@example.com"


@pytest.mark.django_db
def test_failed_signup_leaves_no_outbox_row(api):
    api.post(SIGNUP, body(), format="json")

    api.post(SIGNUP, body(email="Ann@example.com"), format="json")

    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_password_is_stored_with_argon2(api):
    api.post(SIGNUP, body(), format="json")

    assert User.objects.get().password.startswith("argon2")
