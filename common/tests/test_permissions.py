"""The caller's identity comes from the token alone; roles and approval decide what they may do."""

from types import SimpleNamespace

import pytest

from common.permissions import IsAdminApprovedAgentOrCustomer, IsAdminOrApprovedAgent
from common.testing import test_keys

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("path", "role", "approved", "status", "code"),
    [
        ("/customer", "customer", True, 200, None),
        ("/customer", "agent", True, 403, "permission_denied"),
        ("/customer", "admin", True, 403, "permission_denied"),
        ("/agent", "agent", False, 200, None),
        ("/agent", "agent", True, 200, None),
        ("/agent", "customer", True, 403, "permission_denied"),
        ("/approved-agent", "agent", True, 200, None),
        ("/approved-agent", "agent", False, 403, "agent_not_approved"),
        ("/approved-agent", "admin", True, 403, "permission_denied"),
        ("/approved-agent", "customer", True, 403, "permission_denied"),
        ("/admin-only", "admin", True, 200, None),
        ("/admin-only", "customer", True, 403, "permission_denied"),
        ("/admin-only", "agent", True, 403, "permission_denied"),
        ("/staff", "admin", True, 200, None),
        ("/staff", "agent", True, 200, None),
        ("/staff", "agent", False, 403, "agent_not_approved"),
        ("/staff", "customer", True, 403, "permission_denied"),
        ("/admin-only", "superuser", True, 403, "permission_denied"),
    ],
)
def test_role_permissions(api, path, role, approved, status, code):
    response = api.as_role(role, is_approved=approved).get(path)

    assert response.status_code == status
    if code:
        assert error_code(response) == code
    else:
        assert response.json()["data"] == {"user_id": 5, "role": role, "is_approved": approved}


def test_the_waiting_agents_message_does_not_stick_to_the_next_caller(api):
    waiting = api.as_role("agent", is_approved=False).get("/staff")
    customer = api.as_role("customer").get("/staff")

    assert error_code(waiting) == "agent_not_approved"
    assert "approval" in waiting.json()["error"]["message"]
    assert error_code(customer) == "permission_denied"
    assert "approval" not in customer.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/customer", "/agent", "/approved-agent", "/admin-only", "/staff"])
def test_no_token_is_401(api, path):
    response = api.get(path)

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (f"Bearer {test_keys.mint(user_id=1, role='admin', lifetime=-5)}", "expired"),
        (f"Bearer {test_keys.mint(user_id=1, role='admin', audience='someone-else')}", "audience"),
        (f"Bearer {test_keys.mint(user_id=1, role='admin', issuer='someone-else')}", "issuer"),
        (f"Bearer {test_keys.mint(user_id=1, role='admin', token_type='refresh')}", "access token"),
        (f"Basic {test_keys.mint(user_id=1, role='admin')}", "Bearer"),
        ("Bearer ", "Bearer"),
        ("Bearer not.a.token", "malformed"),
    ],
    ids=["expired", "audience", "issuer", "refresh-as-access", "basic-scheme", "empty", "garbage"],
)
def test_a_bad_token_is_401_with_a_reason(api, authorization, reason):
    response = api.get("/admin-only", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert error_code(response) == "invalid_token"
    assert reason.lower() in response.json()["error"]["message"].lower()
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_service_reads_its_keys_from_the_jwks_url(api, settings, http_server):
    from common.keys import load_public_key, public_jwk

    issuer = http_server()
    issuer.serve_json({"keys": [public_jwk(load_public_key(test_keys.public_path.read_bytes()))]})
    settings.JWT_PUBLIC_KEY_PATHS = []
    settings.JWT_JWKS_URL = f"{issuer.url}/api/user/.well-known/jwks.json"

    first = api.as_role("admin").get("/admin-only")
    second = api.as_role("admin", user_id=6).get("/admin-only")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["data"]["user_id"] == 6
    assert [hit.path for hit in issuer.hits] == ["/api/user/.well-known/jwks.json"]


def test_without_keys_every_token_is_refused(api, settings):
    settings.JWT_PUBLIC_KEY_PATHS = []

    response = api.as_role("admin").get("/admin-only")

    assert response.status_code == 401


def test_the_service_key_guards_internal_routes(api, settings):
    assert api.get("/internal").status_code == 403
    assert api.get("/internal", HTTP_X_SERVICE_KEY="wrong").status_code == 403
    assert api.get("/internal", HTTP_X_SERVICE_KEY=settings.SERVICE_KEY).status_code == 200


def test_a_user_token_is_no_service_key(api):
    response = api.as_role("admin").get("/internal")

    assert response.status_code == 403
    assert error_code(response) == "permission_denied"


def test_an_unset_service_key_opens_nothing(api, settings):
    settings.SERVICE_KEY = ""

    assert api.get("/internal", HTTP_X_SERVICE_KEY="").status_code == 403


@pytest.mark.parametrize(
    ("is_rejected", "code"),
    [(True, "agent_rejected"), (False, "agent_not_approved")],
    ids=["rejected", "waiting"],
)
def test_a_caller_object_that_knows_the_agent_was_rejected_gets_agent_rejected(is_rejected, code):
    agent = SimpleNamespace(is_authenticated=True, role="agent", is_approved=False, is_rejected=is_rejected)
    permission = IsAdminOrApprovedAgent()

    assert permission.has_permission(SimpleNamespace(user=agent), view=None) is False
    assert permission.code == code


@pytest.mark.parametrize(
    ("role", "is_approved", "allowed", "code"),
    [
        ("admin", True, True, None),
        ("agent", True, True, None),
        ("customer", True, True, None),
        ("agent", False, False, "agent_not_approved"),
        ("", False, False, "permission_denied"),
    ],
    ids=["admin", "approved-agent", "customer", "waiting-agent", "anonymous"],
)
def test_admin_approved_agent_or_customer_keeps_the_waiting_agents_code(role, is_approved, allowed, code):
    user = SimpleNamespace(is_authenticated=bool(role), role=role, is_approved=is_approved)
    permission = IsAdminApprovedAgentOrCustomer()

    assert permission.has_permission(SimpleNamespace(user=user), view=None) is allowed
    if code:
        assert permission.code == code
