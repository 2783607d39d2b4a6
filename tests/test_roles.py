"""Every role rule of API.md at least once, through the gateway."""

from __future__ import annotations

import pytest

from tests.actors import PASSWORD, approved_agent, sign_up
from tests.harness import wait_for


@pytest.fixture(scope="module")
def cast(system, admin):
    """Two customers, an approved agent, a waiting agent and one NEW loan of the first customer."""
    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    other_customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    waiting_agent = sign_up(gateway, "agent")
    loan = agent.api.post(
        "/api/loan/customer-loan", {"customer_id": customer.id, "principal": "50000.00", "months": 24}
    ).data
    return {
        "admin": admin,
        "customer": customer,
        "other_customer": other_customer,
        "agent": agent,
        "waiting_agent": waiting_agent,
        "loan": loan,
    }


RULES = [
    # who, method, path (with {loan} / {customer}), body, expected status
    (
        "customer",
        "POST",
        "/api/loan/customer-loan",
        {"customer_id": "{customer}", "principal": "20000", "months": 6},
        403,
    ),
    (
        "waiting_agent",
        "POST",
        "/api/loan/customer-loan",
        {"customer_id": "{customer}", "principal": "20000", "months": 6},
        403,
    ),
    ("waiting_agent", "GET", "/api/loan/list-loans-admin-agent", None, 403),
    ("customer", "GET", "/api/loan/list-loans-admin-agent", None, 403),
    ("agent", "GET", "/api/loan/list-loans-admin-agent", None, 200),
    ("admin", "GET", "/api/loan/list-loans-admin-agent?status=NEW", None, 200),
    ("admin", "GET", "/api/loan/list-loans-admin-agent?status=MAYBE", None, 400),
    ("agent", "GET", "/api/loan/list-loans-customer", None, 403),
    ("customer", "GET", "/api/loan/list-loans-customer", None, 200),
    ("agent", "PUT", "/api/loan/approve-reject-loan/{loan}", {"status": "APPROVED"}, 403),
    ("customer", "PUT", "/api/loan/approve-reject-loan/{loan}", {"status": "APPROVED"}, 403),
    ("admin", "PUT", "/api/loan/approve-reject-loan/{loan}", {"status": "MAYBE"}, 400),
    ("admin", "PUT", "/api/loan/approve-reject-loan/999999999", {"status": "APPROVED"}, 404),
    ("customer", "PUT", "/api/loan/edit-loan/{loan}", {"months": 12}, 403),
    ("other_customer", "GET", "/api/loan/{loan}", None, 404),
    ("other_customer", "GET", "/api/loan/{loan}/schedule", None, 404),
    ("customer", "GET", "/api/loan/{loan}", None, 200),
    ("agent", "GET", "/api/loan/{loan}", None, 200),
    ("customer", "GET", "/api/loan/{loan}/history", None, 403),
    ("waiting_agent", "GET", "/api/loan/{loan}/history", None, 403),
    ("customer", "POST", "/api/loan/quote", {"principal": "1000000.00", "months": 60}, 200),
    ("customer", "GET", "/api/user/list-users", None, 403),
    ("agent", "GET", "/api/user/list-users", None, 403),
    ("agent", "GET", "/api/user/list-agents", None, 200),
    ("waiting_agent", "GET", "/api/user/list-agents", None, 403),
    ("customer", "GET", "/api/user/list-approvals", None, 403),
    ("agent", "PUT", "/api/user/approve-delete/{customer}", {"action": "approve"}, 403),
    ("customer", "POST", "/api/user/create-admin", {"email": "x@example.com", "password": PASSWORD}, 403),
    (
        "customer",
        "POST",
        "/api/notifications/send",
        {"user_id": "{customer}", "channel": "in_app", "subject": "s", "body": "b"},
        403,
    ),
    (
        "agent",
        "POST",
        "/api/notifications/send-batch",
        {"user_ids": ["{customer}"], "channel": "in_app", "subject": "s", "body": "b"},
        403,
    ),
]


def _fill(value, cast):
    """Put the cast's ids into a rule: "{customer}" alone becomes the id, inside a path its digits."""
    if value == "{customer}":
        return cast["customer"].id
    if isinstance(value, str):
        return value.format(loan=cast["loan"]["id"], customer=cast["customer"].id)
    if isinstance(value, list):
        return [_fill(item, cast) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, cast) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status"), RULES, ids=lambda v: v if isinstance(v, str) else None
)
def test_role_rule(cast, who, method, path, body, status):
    reply = cast[who].api.request(method, _fill(path, cast), _fill(body, cast))

    assert reply.status == status, reply.body
    if status >= 400:
        assert reply.json["success"] is False
        assert reply.json["error"]["code"]
        assert reply.headers.get("X-Correlation-ID")


@pytest.mark.parametrize(
    "path",
    ["/api/loan/list-loans-customer", "/api/notifications/", "/api/user/profile", "/api/loan/1/schedule"],
)
def test_protected_route_without_token_is_401(system, path):
    reply = system.gateway.get(path)

    assert reply.status == 401
    assert reply.json["success"] is False


def test_someone_elses_notification_is_404(system, cast):
    customer, other = cast["customer"], cast["other_customer"]
    own = wait_for(
        lambda: customer.api.get("/api/notifications/?kind=loan.created").data["results"],
        timeout=30,
        message="the loan.created notification",
    )

    assert other.api.get(f"/api/notifications/{own[0]['id']}").status == 404
    assert other.api.post(f"/api/notifications/{own[0]['id']}/read").status == 404
    assert cast["admin"].api.get(f"/api/notifications/{own[0]['id']}").status == 200


def test_admin_sends_a_batch_and_each_user_gets_it(system, cast):
    admin, customer, other = cast["admin"], cast["customer"], cast["other_customer"]

    reply = admin.api.post(
        "/api/notifications/send-batch",
        {"user_ids": [customer.id, other.id], "channel": "in_app", "subject": "Maintenance", "body": "Sunday 2am"},
    )

    assert reply.status == 202, reply.body
    assert reply.data["queued"] == 2
    for person in (customer, other):
        wait_for(
            lambda person=person: [
                n for n in person.api.get("/api/notifications/").data["results"] if n["subject"] == "Maintenance"
            ],
            timeout=30,
            message="the batch notification",
        )


def test_rejected_agent_cannot_sign_in_and_deleted_agent_cannot_refresh(system, admin):
    gateway = system.gateway
    rejected = sign_up(gateway, "agent")
    deleted = approved_agent(gateway, admin)

    assert admin.api.put(f"/api/user/approve-delete/{rejected.id}", {"action": "reject"}).status == 200
    assert admin.api.put(f"/api/user/approve-delete/{rejected.id}", {"action": "approve"}).status == 409
    assert admin.api.delete(f"/api/user/approve-delete/{deleted.id}").status == 204

    login = gateway.post("/api/user/login", {"email": rejected.email, "password": PASSWORD})
    assert login.status == 403
    assert login.error_code == "agent_rejected"
    refresh = gateway.post("/api/user/token/refresh", {"refresh": deleted.refresh})
    assert refresh.status == 401
