"""Account security through the gateway: a second factor, sessions, token theft, and the audit trail of it all."""

from __future__ import annotations

from collections import Counter

import pyotp

from tests.actors import PASSWORD, sign_in, sign_up, totp_code

LOGIN = "/api/user/login"
SECOND_STEP = "/api/user/login/mfa"
REFRESH = "/api/user/token/refresh"


def audit_of(admin, **filters) -> list[dict]:
    """Every audit row matching `filters`, oldest first, read page by page through the gateway."""
    query = "&".join(f"{key}={value}" for key, value in {**filters, "page_size": 100}.items())
    rows, cursor = [], None
    while True:
        reply = admin.api.get(f"/api/user/audit?{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200, reply.body
        rows += reply.data["results"]
        cursor = reply.data["next_cursor"]
        if not cursor:
            return rows[::-1]


def test_a_customer_secures_the_account_and_the_audit_trail_holds_each_event_once(system, admin):
    gateway = system.gateway
    device = {"User-Agent": "e2e-phone/1.0"}
    customer = sign_up(gateway, "customer")

    # Set up an authenticator: a secret, then its first code turns it on and gives the recovery codes.
    started = customer.api.post("/api/user/mfa/totp")
    assert started.status == 201, started.body
    secret = started.data["secret"]
    assert pyotp.parse_uri(started.data["otpauth_uri"]).name == customer.email
    confirmed = customer.api.post("/api/user/mfa/totp/confirm", {"code": totp_code(secret)})
    assert confirmed.status == 200, confirmed.body
    recovery = confirmed.data["recovery_codes"]
    assert len(recovery) == 10

    # Signing in is now two steps: a wrong code is refused, the right one gives the tokens, and never twice.
    first = gateway.post(LOGIN, {"email": customer.email, "password": PASSWORD}, headers=device)
    assert first.data["mfa_required"] is True
    assert "access" not in first.data
    wrong = gateway.post(SECOND_STEP, {"challenge": first.data["challenge"], "code": "000000"})
    assert (wrong.status, wrong.error_code) == (400, "invalid_mfa_code")
    code = totp_code(secret)
    phone = gateway.post(SECOND_STEP, {"challenge": first.data["challenge"], "code": code}, headers=device)
    assert phone.status == 200, phone.body
    again = gateway.post(LOGIN, {"email": customer.email, "password": PASSWORD})
    replay = gateway.post(SECOND_STEP, {"challenge": again.data["challenge"], "code": code})
    assert (replay.status, replay.error_code) == (400, "invalid_mfa_code")

    # A recovery code stands in for a lost phone, once.
    laptop = gateway.post(SECOND_STEP, {"challenge": again.data["challenge"], "code": recovery[0]})
    assert laptop.status == 200, laptop.body

    # Two devices: the phone sees both, signs the laptop out, and the laptop's refresh token is dead.
    on_phone = gateway.as_token(phone.data["access"])
    sessions = on_phone.get("/api/user/sessions").data["results"]
    assert len(sessions) == 3  # the sign-up's own sign-in, the phone, the laptop
    assert [row["user_agent"] for row in sessions if row["current"]] == ["e2e-phone/1.0"]
    laptop_session = next(row["id"] for row in sessions if not row["current"] and row["user_agent"] != "e2e-phone/1.0")
    assert on_phone.delete(f"/api/user/sessions/{laptop_session}").status == 204
    assert gateway.post(REFRESH, {"refresh": laptop.data["refresh"]}).status == 401
    assert on_phone.delete("/api/user/sessions").data == {"ended": 1}  # the sign-up's session
    assert gateway.post(REFRESH, {"refresh": customer.refresh}).status == 401

    # A stolen refresh token used after its owner rotated it ends the owner's session too.
    rotated = gateway.post(REFRESH, {"refresh": phone.data["refresh"]})
    assert rotated.status == 200, rotated.body
    theft = gateway.post(REFRESH, {"refresh": phone.data["refresh"]})
    assert (theft.status, theft.error_code) == (401, "token_revoked")
    assert gateway.post(REFRESH, {"refresh": rotated.data["refresh"]}).status == 401

    # The customer signs in again and changes the password: that session ends as well.
    fresh = sign_in(gateway, customer.email, totp_secret=secret)
    changed = fresh.api.post(
        "/api/user/change-password", {"old_password": PASSWORD, "new_password": "e2e-Changed-2026"}
    )
    assert changed.status == 200, changed.body
    assert gateway.post(REFRESH, {"refresh": fresh.refresh}).status == 401

    # The audit trail: exactly one row per event, each naming the customer, with the client's details.
    rows = audit_of(admin, subject=customer.id)
    assert Counter(row["event"] for row in rows) == {
        "user.registered": 1,
        "login.succeeded": 4,  # sign-up's sign-in, phone, laptop, fresh
        "mfa.enrolled": 1,
        "mfa.failed": 2,  # the wrong code and the replayed one
        "mfa.recovery_code_used": 1,
        "session.signed_out": 2,  # the laptop, then every other device
        "token.refresh_reused": 1,
        "password.changed": 1,
    }
    assert [row["reason"] for row in rows if row["event"] == "mfa.failed"] == ["wrong_code_at_sign_in"] * 2
    phone_login = next(row for row in rows if row["user_agent"] == "e2e-phone/1.0")
    assert phone_login["event"] == "login.succeeded"
    assert phone_login["details"] == {"second_factor": "totp"}
    assert phone_login["ip"] == "127.0.0.1"
    assert phone_login["correlation_id"]
    assert {row["outcome"] for row in rows if row["event"] == "token.refresh_reused"} == {"failure"}


def test_the_audit_trail_filters_and_refuses_bad_filters_and_non_admins(system, admin):
    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    assert gateway.post(LOGIN, {"email": customer.email, "password": "wrong-Password-1"}).status == 401

    failures = audit_of(admin, subject=customer.id, event="login.failed")
    logins = audit_of(admin, subject=customer.id, event="login.")
    bad_from = admin.api.get("/api/user/audit?from=yesterday")
    backwards = admin.api.get("/api/user/audit?from=2026-12-02&to=2026-12-01")

    assert [(row["reason"], row["outcome"]) for row in failures] == [("wrong_password", "failure")]
    assert [row["event"] for row in logins] == ["login.succeeded", "login.failed"]
    assert (bad_from.status, bad_from.error_code) == (400, "validation_error")
    assert backwards.status == 400
    assert customer.api.get("/api/user/audit").status == 403


def test_an_admin_needs_the_second_factor_and_can_reset_a_users(system, admin):
    gateway = system.gateway
    password_only = gateway.post(LOGIN, {"email": admin.email, "password": PASSWORD})
    assert password_only.data["mfa_required"] is True  # the admin fixture enrolled at its first sign-in
    assert "access" not in password_only.data

    customer = sign_up(gateway, "customer")
    secret = customer.api.post("/api/user/mfa/totp").data["secret"]
    assert customer.api.post("/api/user/mfa/totp/confirm", {"code": totp_code(secret)}).status == 200
    reset = admin.api.post(f"/api/user/mfa/reset/{customer.id}")

    assert reset.status == 200, reset.body
    assert "access" in gateway.post(LOGIN, {"email": customer.email, "password": PASSWORD}).data
    [row] = audit_of(admin, subject=customer.id, event="mfa.reset")
    assert row["actor_id"] == admin.id


def test_a_user_renews_recovery_codes_and_turns_the_factor_off(system, admin):
    gateway = system.gateway
    customer = sign_up(gateway, "customer")
    secret = customer.api.post("/api/user/mfa/totp").data["secret"]
    old = customer.api.post("/api/user/mfa/totp/confirm", {"code": totp_code(secret)}).data["recovery_codes"]

    renewed = customer.api.post("/api/user/mfa/recovery-codes", {"code": totp_code(secret)})
    refused = customer.api.post("/api/user/mfa/totp/disable", {"password": "not-It-1", "code": totp_code(secret)})
    recovery = renewed.data["recovery_codes"][0]
    disabled = customer.api.post("/api/user/mfa/totp/disable", {"password": PASSWORD, "code": recovery})

    assert renewed.status == 200, renewed.body
    assert not set(renewed.data["recovery_codes"]) & set(old)
    assert (refused.status, refused.error_code) == (400, "wrong_password")
    assert disabled.status == 200, disabled.body
    assert gateway.post(REFRESH, {"refresh": customer.refresh}).status == 401  # turning it off ends the sessions
    assert "access" in gateway.post(LOGIN, {"email": customer.email, "password": PASSWORD}).data
    events = [row["event"] for row in audit_of(admin, subject=customer.id, event="mfa.")]
    assert events == [
        "mfa.enrolled",
        "mfa.recovery_codes_regenerated",
        "mfa.failed",  # the wrong password
        "mfa.recovery_code_used",
        "mfa.disabled",
    ]
