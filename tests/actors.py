"""The people of the end-to-end stories: sign-up, sign-in and approval through the gateway only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

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

    @property
    def api(self) -> Client:
        return self.gateway.as_token(self.access)

    def refresh_tokens(self) -> None:
        reply = self.gateway.post("/api/user/token/refresh", {"refresh": self.refresh})
        assert reply.status == 200, reply.body
        self.access = reply.data["access"]
        self.refresh = reply.data.get("refresh", self.refresh)


def sign_in(gateway: Client, email: str, password: str = PASSWORD) -> Actor:
    reply = gateway.post("/api/user/login", {"email": email, "password": password})
    assert reply.status == 200, reply.body
    data = reply.data
    return Actor(gateway, data["user"]["id"], email, data["access"], data["refresh"])


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
    agent.refresh_tokens()  # the new claims (is_approved) come with the next refresh
    return agent
