import jwt
import pytest

from tests.factories import PASSWORD, UserFactory
from users.models import Approval, Role

LOGIN = "/api/user/login"


@pytest.mark.django_db
def test_login_returns_tokens_and_the_user(api, customer):
    response = api.post(LOGIN, {"email": customer.email, "password": PASSWORD}, format="json")

    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"access", "refresh", "user"}
    assert data["user"]["id"] == customer.id


@pytest.mark.django_db
def test_access_token_carries_the_documented_claims(api, agent):
    access = api.post(LOGIN, {"email": agent.email, "password": PASSWORD}, format="json").json()["data"]["access"]

    header = jwt.get_unverified_header(access)
    claims = jwt.decode(access, options={"verify_signature": False})
    assert header["alg"] == "RS256"
    assert header["kid"]
    assert {"user_id", "role", "is_approved", "token_type", "jti", "iat", "exp", "iss", "aud"} <= set(claims)
    assert claims["role"] == "agent"
    assert claims["is_approved"] is True
    assert claims["token_type"] == "access"
    assert claims["iss"] == "lms-user-service"
    assert claims["aud"] == "lms"


@pytest.mark.django_db
def test_email_is_matched_case_insensitively(api, customer):
    response = api.post(LOGIN, {"email": customer.email.upper(), "password": PASSWORD}, format="json")

    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "password"),
    [("nobody@example.com", PASSWORD), (None, "wrong-Password-1")],
    ids=["unknown-email", "wrong-password"],
)
def test_wrong_email_and_wrong_password_get_the_same_401(api, customer, email, password):
    response = api.post(LOGIN, {"email": email or customer.email, "password": password}, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_credentials",
        "message": "Email or password is incorrect.",
        "details": {},
    }


@pytest.mark.django_db
def test_deleted_user_gets_the_same_401(api):
    gone = UserFactory(role=Role.AGENT, is_active=False)

    response = api.post(LOGIN, {"email": gone.email, "password": PASSWORD}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.django_db
def test_pending_agent_can_sign_in_to_see_their_status(api, pending_agent):
    response = api.post(LOGIN, {"email": pending_agent.email, "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert response.json()["data"]["user"]["is_approved"] is False


@pytest.mark.django_db
def test_rejected_agent_gets_403_agent_rejected(api):
    rejected = UserFactory(role=Role.AGENT, approval=Approval.REJECTED)

    response = api.post(LOGIN, {"email": rejected.email, "password": PASSWORD}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_rejected"


@pytest.mark.django_db
def test_login_is_throttled_per_email(api, customer, login_rates):
    login_rates(per_email="3/min")
    attempts = [
        api.post(
            LOGIN, {"email": customer.email, "password": "wrong-Password-1"}, format="json", REMOTE_ADDR=f"10.0.0.{n}"
        )
        for n in range(4)
    ]

    assert [r.status_code for r in attempts] == [401, 401, 401, 429]
    assert attempts[-1].json()["error"]["code"] == "rate_limited"
    assert int(attempts[-1]["Retry-After"]) >= 1


@pytest.mark.django_db
def test_login_is_throttled_per_client_ip(api, login_rates):
    login_rates(per_ip="2/min")
    statuses = [
        api.post(LOGIN, {"email": f"x{n}@example.com", "password": "whatever-1A"}, format="json").status_code
        for n in range(3)
    ]

    assert statuses == [401, 401, 429]
