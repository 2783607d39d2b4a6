"""Sessions: each sign-in is a device, listed and signed out; a reused refresh token ends its family."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from common.audit.models import AuditEvent
from common.outbox.models import OutboxMessage
from tests.factories import PASSWORD
from users import services
from users.models import UserSession
from users.tokens import RefreshToken

LOGIN = "/api/user/login"
REFRESH = "/api/user/token/refresh"
SESSIONS = "/api/user/sessions"


def sign_in(api, user, *, agent: str = "pytest-device", ip: str = "203.0.113.9") -> dict:
    response = api.post(
        LOGIN,
        {"email": user.email, "password": PASSWORD},
        format="json",
        HTTP_USER_AGENT=agent,
        HTTP_X_FORWARDED_FOR=ip,
    )
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def refresh(api, token: str):
    return api.post(REFRESH, {"refresh": token}, format="json")


@pytest.mark.django_db
def test_each_sign_in_is_a_session_with_its_device(api, customer):
    phone = sign_in(api, customer, agent="Phone/1.0", ip="203.0.113.1")
    sign_in(api, customer, agent="Laptop/2.0", ip="203.0.113.2")

    listed = api.as_token(phone["access"]).get(SESSIONS)

    assert listed.status_code == 200
    rows = listed.json()["data"]["results"]
    assert [(row["user_agent"], row["ip"], row["current"]) for row in rows] == [
        ("Laptop/2.0", "203.0.113.2", False),
        ("Phone/1.0", "203.0.113.1", True),
    ]
    assert {"id", "created_at", "last_used_at"} <= set(rows[0])


@pytest.mark.django_db
def test_a_refresh_moves_the_session_on_and_keeps_it_one_session(api, customer):
    tokens = sign_in(api, customer)
    before = UserSession.objects.get(user=customer)

    rotated = refresh(api, tokens["refresh"])

    assert rotated.status_code == 200
    after = UserSession.objects.get(user=customer)
    assert after.id == before.id
    assert after.last_used_at > before.last_used_at
    assert after.current_jti != before.current_jti


@pytest.mark.django_db
def test_a_reused_refresh_token_ends_its_whole_family_and_is_audited(api, customer):
    stolen = sign_in(api, customer)["refresh"]
    other_device = sign_in(api, customer)
    legit = refresh(api, stolen).json()["data"]  # the owner's client rotates

    reuse = refresh(api, stolen)  # the thief tries the copy

    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "token_revoked"
    assert refresh(api, legit["refresh"]).status_code == 401  # the family is gone, the newest token too
    assert refresh(api, other_device["refresh"]).status_code == 200  # another device's session is untouched
    [record] = AuditEvent.objects.filter(event="token.refresh_reused")
    assert (record.subject_id, record.outcome) == (str(customer.id), "failure")
    assert UserSession.objects.filter(end_reason="refresh_reuse").count() == 1
    assert refresh(api, stolen).status_code == 401
    assert AuditEvent.objects.filter(event="token.refresh_reused").count() == 1  # an ended family: stale, not theft


@pytest.mark.django_db
def test_signing_out_one_device(api, customer):
    here = sign_in(api, customer)
    there = sign_in(api, customer)
    there_id = RefreshToken(there["refresh"])["sid"]

    response = api.as_token(here["access"]).delete(f"{SESSIONS}/{there_id}")

    assert response.status_code == 204
    assert refresh(api, there["refresh"]).status_code == 401
    assert refresh(api, here["refresh"]).status_code == 200
    again = api.delete(f"{SESSIONS}/{there_id}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "session_not_found"


@pytest.mark.django_db
def test_someone_elses_session_is_404(api, customer, other_customer):
    theirs = sign_in(api, other_customer)
    their_session = UserSession.objects.get(user=other_customer).id

    response = api.as_user(customer).delete(f"{SESSIONS}/{their_session}")

    assert response.status_code == 404
    assert refresh(api, theirs["refresh"]).status_code == 200


@pytest.mark.django_db
def test_signing_out_every_other_device_keeps_this_one(api, customer):
    here = sign_in(api, customer)
    others = [sign_in(api, customer) for _ in range(3)]

    response = api.as_token(here["access"]).delete(SESSIONS)

    assert response.status_code == 200
    assert response.json()["data"] == {"ended": 3}
    assert all(refresh(api, other["refresh"]).status_code == 401 for other in others)
    assert refresh(api, here["refresh"]).status_code == 200


@pytest.mark.django_db
def test_a_password_change_ends_every_session(api, customer):
    tokens = sign_in(api, customer)
    other = sign_in(api, customer)

    changed = api.as_token(tokens["access"]).post(
        "/api/user/change-password", {"old_password": PASSWORD, "new_password": "another-Horse-8"}, format="json"
    )

    assert changed.status_code == 200
    assert refresh(api, tokens["refresh"]).status_code == 401
    assert refresh(api, other["refresh"]).status_code == 401
    assert set(UserSession.objects.values_list("end_reason", flat=True)) == {"password_changed"}
    assert AuditEvent.objects.filter(event="password.changed", subject_id=str(customer.id)).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("approve", [True, False], ids=["approved", "rejected"])
def test_an_agents_approval_either_way_ends_their_sessions(api, pending_agent, admin, approve):
    tokens = sign_in(api, pending_agent)

    services.decide_agent(user_id=pending_agent.id, admin_id=admin.id, approve=approve)

    assert refresh(api, tokens["refresh"]).status_code == 401
    assert UserSession.objects.get(user=pending_agent).end_reason == "account_changed"


@pytest.mark.django_db
def test_deactivation_ends_sessions_and_is_published(api, customer, admin):
    tokens = sign_in(api, customer)

    services.deactivate_user(user_id=customer.id, admin_id=admin.id)

    assert refresh(api, tokens["refresh"]).status_code == 401
    [message] = OutboxMessage.objects.filter(name="user.deactivated")
    assert message.message["payload"]["user_id"] == customer.id
    assert message.message["payload"]["deactivated_by"] == admin.id


@pytest.mark.django_db
def test_a_profile_edit_is_published_once_and_a_no_op_not_at_all(api, customer):
    api.as_user(customer).put("/api/user/profile", {"first_name": "Renamed"}, format="json")
    api.put("/api/user/profile", {"first_name": "Renamed"}, format="json")

    [message] = OutboxMessage.objects.filter(name="user.profile_changed")
    assert message.message["payload"]["first_name"] == "Renamed"


@pytest.mark.django_db
def test_the_sessions_list_needs_a_token(api):
    assert api.get(SESSIONS).status_code == 401


@pytest.mark.django_db
def test_a_role_that_needs_a_factor_cannot_refresh_without_one(api, admin, settings):
    settings.MFA_REQUIRED_ROLES = []
    tokens = sign_in(api, admin)  # signed in before a factor was required
    settings.MFA_REQUIRED_ROLES = ["admin"]

    response = refresh(api, tokens["refresh"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"


@pytest.mark.django_db
def test_a_session_whose_refresh_token_expired_is_not_listed(api, customer):
    sign_in(api, customer)
    UserSession.objects.filter(user=customer).update(last_used_at=timezone.now() - timedelta(days=2))
    current = sign_in(api, customer)

    rows = api.as_token(current["access"]).get(SESSIONS).json()["data"]["results"]

    assert [row["current"] for row in rows] == [True]
