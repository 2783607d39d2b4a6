"""The people of the end-to-end stories: sign-up, sign-in and approval through the gateway only."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import pyotp

from tests.client import Client

PASSWORD = "e2e-Secret-2026"


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Actor:
    """A signed-in user: their id, email, tokens and a client that sends their access token."""

    gateway: Client
    id: int
    email: str
    access: str
    refresh: str
    totp_secret: str | None = None  # set once the actor enrolled a second factor (every admin does)

    @property
    def api(self) -> Client:
        return self.gateway.as_token(self.access)

    def refresh_tokens(self) -> None:
        reply = self.gateway.post("/api/user/token/refresh", {"refresh": self.refresh})
        assert reply.status == 200, reply.body
        self.access = reply.data["access"]
        self.refresh = reply.data.get("refresh", self.refresh)


_STEP = 30  # seconds per TOTP code (RFC 6238's default, as user_service's)
_last_step: dict[str, int] = {}
_steps_lock = threading.Lock()


def totp_code(secret: str) -> str:
    """A code for `secret` that user_service has not seen yet: it accepts each time step once.

    user_service accepts the step before and after the current one (clock skew), so a story may sign the
    same admin in three times in one 30-second window; a fourth waits for the next window.
    """
    with _steps_lock:
        now = int(time.time()) // _STEP
        step = max(now - 1, _last_step.get(secret, now - 2) + 1)
        while step > int(time.time()) // _STEP + 1:
            time.sleep(0.5)
        _last_step[secret] = step
    return pyotp.TOTP(secret).at(step * _STEP)


def sign_in(gateway: Client, email: str, password: str = PASSWORD, *, totp_secret: str | None = None) -> Actor:
    """Sign in through the gateway; a user whose role needs a second factor enrols one on their first sign-in."""
    reply = gateway.post("/api/user/login", {"email": email, "password": password})
    assert reply.status == 200, reply.body
    data = reply.data
    if data.get("mfa_enrolment_required"):
        enrolment = gateway.post("/api/user/login/mfa/enrol", {"challenge": data["challenge"]})
        assert enrolment.status == 200, enrolment.body
        totp_secret = enrolment.data["secret"]
    if data.get("mfa_enrolment_required") or data.get("mfa_required"):
        assert totp_secret, f"{email} has a second factor; sign_in needs its secret"
        reply = gateway.post("/api/user/login/mfa", {"challenge": data["challenge"], "code": totp_code(totp_secret)})
        assert reply.status == 200, reply.body
        data = reply.data
    return Actor(gateway, data["user"]["id"], email, data["access"], data["refresh"], totp_secret)


def sign_up(gateway: Client, role: str, *, first_name: str = "Test", last_name: str = "User") -> Actor:
    email = unique_email(role)
    reply = gateway.post(
        "/api/user/signup",
        {"email": email, "password": PASSWORD, "first_name": first_name, "last_name": last_name, "role": role},
    )
    assert reply.status == 201, reply.body
    return sign_in(gateway, email)


def approved_agent(gateway: Client, admin: Actor) -> Actor:
    agent = sign_up(gateway, "agent")
    reply = admin.api.put(f"/api/user/approve-delete/{agent.id}", {"action": "approve"})
    assert reply.status == 200, reply.body
    # The approval ended the agent's sessions (their tokens carried is_approved: false): they sign in again.
    return sign_in(gateway, agent.email)


def requested_loan(gateway: Client, admin: Actor, *, principal: str, months: int) -> tuple[Actor, Actor, dict]:
    """A new customer, an approved agent, and the loan the agent requested for the customer (NEW)."""
    customer = sign_up(gateway, "customer")
    agent = approved_agent(gateway, admin)
    created = agent.api.post(
        "/api/loan/customer-loan", {"customer_id": customer.id, "principal": principal, "months": months}
    )
    assert created.status == 201, created.body
    return customer, agent, created.data
