"""API keys end to end: an admin makes one for an agent; a partner's system uses it through the gateway within
its scopes; every service enforces them; use is counted; a revoked key stops within the gateway's cache time."""

from __future__ import annotations

import time

import pytest

from tests.actors import approved_agent, sign_up
from tests.client import Client


@pytest.fixture(scope="module")
def partner(system, admin):
    """An approved agent, a customer, and a key of the agent's that reads and requests loans."""
    agent = approved_agent(system.gateway, admin)
    customer = sign_up(system.gateway, "customer")
    reply = admin.api.post(
        "/api/user/api-keys",
        {"name": "broker-site", "owner_id": agent.id, "scopes": ["loans:read", "loans:write"], "rate_limit": 1000},
    )
    assert reply.status == 201, reply.body
    key = reply.data
    client = Client(system.gateway.base_url, headers={"X-API-Key": key["key"]})
    return {"agent": agent, "customer": customer, "key": key, "client": client}


def test_a_key_requests_and_reads_a_loan_as_its_agent(partner):
    client, customer = partner["client"], partner["customer"]

    created = client.post("/api/loan/customer-loan", {"customer_id": customer.id, "principal": "30000", "months": 12})

    assert created.status == 201, created.body
    assert created.data["agent_id"] == partner["agent"].id
    read = client.get(f"/api/loan/{created.data['id']}")
    assert read.status == 200
    assert read.data["principal"] == "30000.00"


def test_a_key_cannot_go_beyond_its_scopes_in_any_service(partner, admin):
    client, customer = partner["client"], partner["customer"]
    loan = client.post("/api/loan/customer-loan", {"customer_id": customer.id, "principal": "20000", "months": 6}).data

    refusals = {
        "decide": client.put(f"/api/loan/approve-reject-loan/{loan['id']}", {"status": "APPROVED"}),
        "profile": client.get("/api/user/profile"),
        "keys": client.get("/api/user/api-keys"),
        "inbox": client.get("/api/notifications/"),
    }

    assert {name: (r.status, r.error_code) for name, r in refusals.items()} == dict.fromkeys(
        refusals, (403, "insufficient_scope")
    )
    assert admin.api.get(f"/api/loan/{loan['id']}").data["status"] == "NEW"  # nothing was decided


def test_key_use_is_counted_at_user_service_and_on_the_gateways_metrics(system, partner, admin):
    partner["client"].get("/api/loan/list-loans-admin-agent")

    shown = admin.api.get(f"/api/user/api-keys/{partner['key']['id']}").data
    metrics = system.gateway.get("/metrics").body.decode()

    assert shown["last_used_at"] is not None
    assert "key" not in shown  # the secret is never shown again
    assert 'gateway_api_key_requests_total{key="broker-site",status="200"}' in metrics


def test_a_revoked_key_stops_working_within_the_gateways_cache_time(system, admin):
    agent = approved_agent(system.gateway, admin)
    made = admin.api.post("/api/user/api-keys", {"name": "agency", "owner_id": agent.id, "scopes": ["loans:read"]})
    client = Client(system.gateway.base_url, headers={"X-API-Key": made.data["key"]})
    assert client.get("/api/loan/list-loans-admin-agent").status == 200

    assert admin.api.delete(f"/api/user/api-keys/{made.data['id']}").data["is_revoked"] is True
    revoked_at = time.monotonic()
    while (reply := client.get("/api/loan/list-loans-admin-agent")).status == 200:
        assert time.monotonic() - revoked_at < 2 + 1, "the revoked key still works past GATEWAY_API_KEY_CACHE_SECONDS"
        time.sleep(0.1)

    assert reply.status == 401
    assert reply.error_code == "invalid_api_key"


def test_a_rotated_key_replaces_the_old_one(system, admin):
    agent = approved_agent(system.gateway, admin)
    old = admin.api.post("/api/user/api-keys", {"name": "rotating", "owner_id": agent.id, "scopes": ["loans:read"]})
    new = admin.api.post(f"/api/user/api-keys/{old.data['id']}/rotate")

    assert new.status == 201
    fresh = Client(system.gateway.base_url, headers={"X-API-Key": new.data["key"]})
    stale = Client(system.gateway.base_url, headers={"X-API-Key": old.data["key"]})
    assert fresh.get("/api/loan/list-loans-admin-agent").status == 200
    assert stale.get("/api/loan/list-loans-admin-agent").error_code == "invalid_api_key"
