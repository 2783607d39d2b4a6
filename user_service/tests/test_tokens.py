"""Token forgery, expiry, rotation, logout and revocation."""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from tests.factories import PASSWORD, UserFactory
from users.models import Approval, Role
from users.tokens import verification_keys

PROFILE = "/api/user/profile"
REFRESH = "/api/user/token/refresh"


def login(api, user) -> dict:
    response = api.post("/api/user/login", {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    return response.json()["data"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def resign(token: str, **changes) -> str:
    """The same claims (with changes), signed with the real private key."""
    private_pem = Path(settings.JWT_PRIVATE_KEY_PATH).read_bytes()
    header = jwt.get_unverified_header(token)
    return jwt.encode({**claims_of(token), **changes}, private_pem, algorithm="RS256", headers={"kid": header["kid"]})


@pytest.mark.django_db
def test_valid_access_token_reads_the_profile(api, customer):
    tokens = login(api, customer)

    response = api.as_token(tokens["access"]).get(PROFILE)

    assert response.status_code == 200
    assert response.json()["data"]["email"] == customer.email


@pytest.mark.django_db
def test_missing_token_is_401_not_authenticated(api):
    response = api.get(PROFILE)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_alg_none_is_refused(api, customer):
    claims = claims_of(login(api, customer)["access"])
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."

    response = api.as_token(forged).get(PROFILE)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


@pytest.mark.django_db
def test_hs256_signed_with_the_public_key_is_refused(api, customer):
    access = login(api, customer)["access"]
    public_pem = api.get("/api/user/.well-known/jwks.json").json()  # what an attacker can read
    assert public_pem["keys"]
    key_bytes = Path(settings.JWT_PRIVATE_KEY_PATH).with_name("jwt_public.pem").read_bytes()
    # PyJWT refuses to HMAC-sign with a PEM, so the forgery is built by hand, as an attacker would.
    forged = _hs256(claims_of(access), key_bytes, jwt.get_unverified_header(access)["kid"])

    response = api.as_token(forged).get(PROFILE)

    assert response.status_code == 401


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.django_db
def test_tampered_claims_are_refused(api, customer):
    access = login(api, customer)["access"]
    header, _, signature = access.split(".")
    tampered = f"{header}.{_b64({**claims_of(access), 'role': 'admin'})}.{signature}"

    response = api.as_token(tampered).get(PROFILE)

    assert response.status_code == 401


@pytest.mark.django_db
def test_token_signed_by_another_key_is_refused(api, customer):
    access = login(api, customer)["access"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        claims_of(access), stranger, algorithm="RS256", headers={"kid": jwt.get_unverified_header(access)["kid"]}
    )

    assert api.as_token(forged).get(PROFILE).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [{"exp": int(time.time()) - 5}, {"aud": "someone-else"}, {"iss": "evil-issuer"}],
    ids=["expired", "wrong-audience", "wrong-issuer"],
)
def test_expired_or_foreign_tokens_are_refused(api, customer, changes):
    forged = resign(login(api, customer)["access"], **changes)

    response = api.as_token(forged).get(PROFILE)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


@pytest.mark.django_db
def test_refresh_token_cannot_be_used_as_access(api, customer):
    tokens = login(api, customer)

    assert api.as_token(tokens["refresh"]).get(PROFILE).status_code == 401


@pytest.mark.django_db
def test_access_token_cannot_be_used_to_refresh(api, customer):
    tokens = login(api, customer)

    response = api.post(REFRESH, {"refresh": tokens["access"]}, format="json")

    assert response.status_code == 401


@pytest.mark.django_db
def test_refresh_rotates_and_the_old_refresh_stops_working(api, customer):
    tokens = login(api, customer)

    first = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    second = api.post(REFRESH, {"refresh": first.json()["data"]["refresh"]}, format="json")

    assert first.status_code == 200
    assert set(first.json()["data"]) == {"access", "refresh"}
    assert first.json()["data"]["refresh"] != tokens["refresh"]
    assert second.status_code == 200
    # The first token again: a copy is in use, so the whole session ends (tests/test_sessions.py).
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401
    assert api.post(REFRESH, {"refresh": second.json()["data"]["refresh"]}, format="json").status_code == 401


@pytest.mark.django_db
def test_a_newly_approved_agent_signs_in_again_and_gets_the_new_claims(api, pending_agent, admin):
    tokens = login(api, pending_agent)
    api.as_user(admin).put(f"/api/user/approve-delete/{pending_agent.id}", {"action": "approve"}, format="json")
    api.credentials()

    stale = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")

    assert stale.status_code == 401  # the approval ended the session that carried is_approved: false
    assert claims_of(login(api, pending_agent)["access"])["is_approved"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [{"is_active": False}, {"role": Role.CUSTOMER}, {"approval": Approval.REJECTED}],
    ids=["deactivated", "demoted", "rejected"],
)
def test_changed_user_cannot_refresh(api, agent, change):
    tokens = login(api, agent)
    for field, value in change.items():
        setattr(agent, field, value)
    if change.get("role") == Role.CUSTOMER:
        agent.approval = Approval.APPROVED
    agent.save()

    response = api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"


@pytest.mark.django_db
def test_logout_revokes_that_refresh_token(api, customer):
    tokens = login(api, customer)

    response = api.as_token(tokens["access"]).post("/api/user/logout", {"refresh": tokens["refresh"]}, format="json")
    api.credentials()

    assert response.status_code == 200
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401


@pytest.mark.django_db
def test_logout_with_someone_elses_refresh_is_refused(api, customer, other_customer):
    theirs = login(api, other_customer)["refresh"]

    response = api.as_user(customer).post("/api/user/logout", {"refresh": theirs}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "refresh_token_not_owned"
    api.credentials()
    assert api.post(REFRESH, {"refresh": theirs}, format="json").status_code == 200


@pytest.mark.django_db
def test_change_password_revokes_every_refresh_token(api, customer):
    first, second = login(api, customer), login(api, customer)

    response = api.as_token(first["access"]).post(
        "/api/user/change-password", {"old_password": PASSWORD, "new_password": "new-Secret-42x"}, format="json"
    )
    api.credentials()

    assert response.status_code == 200
    assert api.post(REFRESH, {"refresh": first["refresh"]}, format="json").status_code == 401
    assert api.post(REFRESH, {"refresh": second["refresh"]}, format="json").status_code == 401
    assert (
        api.post("/api/user/login", {"email": customer.email, "password": "new-Secret-42x"}, format="json").status_code
        == 200
    )


@pytest.mark.django_db
def test_change_password_with_wrong_old_password_is_400(api, customer):
    response = api.as_user(customer).post(
        "/api/user/change-password", {"old_password": "not-It-123", "new_password": "new-Secret-42x"}, format="json"
    )

    assert response.status_code == 400
    assert "old_password" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_change_password_to_a_weak_one_is_400(api, customer):
    response = api.as_user(customer).post(
        "/api/user/change-password", {"old_password": PASSWORD, "new_password": "12345678"}, format="json"
    )

    assert response.status_code == 400
    assert "password" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_deleted_users_access_token_stops_at_once_here(api, agent, admin):
    tokens = login(api, agent)
    api.as_user(admin).delete(f"/api/user/approve-delete/{agent.id}")

    assert api.as_token(tokens["access"]).get(PROFILE).status_code == 401


@pytest.mark.django_db
def test_jwks_publishes_the_key_that_verifies_tokens(api, customer):
    access = login(api, customer)["access"]

    document = api.get("/api/user/.well-known/jwks.json").json()
    keys = {key["kid"]: key for key in document["keys"]}
    jwk = keys[jwt.get_unverified_header(access)["kid"]]
    public_key = jwt.PyJWK.from_dict(jwk).key

    claims = jwt.decode(access, public_key, algorithms=["RS256"], audience="lms", issuer="lms-user-service")
    assert claims["user_id"] == customer.id
    assert jwk["alg"] == "RS256"
    assert "d" not in jwk  # never the private part


@pytest.mark.django_db
def test_previous_key_stays_in_the_jwks_and_keeps_verifying(api, customer, tmp_path, settings):
    from common.keys import generate_keypair, key_id, load_public_key

    _, old_public = generate_keypair(tmp_path)
    settings.JWT_PREVIOUS_PUBLIC_KEY_PATHS = [str(old_public)]
    verification_keys.cache_clear()
    try:
        kids = {key["kid"] for key in api.get("/api/user/.well-known/jwks.json").json()["keys"]}
        assert key_id(load_public_key(old_public.read_bytes())) in kids
        assert len(kids) == 2
    finally:
        settings.JWT_PREVIOUS_PUBLIC_KEY_PATHS = []
        verification_keys.cache_clear()


def test_user_factory_is_importable():
    assert UserFactory._meta.model.__name__ == "User"
