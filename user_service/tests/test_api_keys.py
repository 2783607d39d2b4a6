"""API keys: admins make, list, rotate and revoke them; the exchange gives a scoped token; only a hash is kept."""

from datetime import timedelta

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from common.audit.models import AuditEvent
from users.models import ApiKey, Approval

KEYS = "/api/user/api-keys"
EXCHANGE = "/internal/api-keys/exchange"


def make_key(api, admin, owner, **fields):
    body = {"name": "broker site", "owner_id": owner.id, "scopes": ["loans:read", "loans:write"], **fields}
    return api.as_user(admin).post(KEYS, body, format="json")


def exchange(api, key: str):
    api.credentials()
    return api.post(EXCHANGE, HTTP_X_API_KEY=key)


@pytest.mark.django_db
def test_an_admin_makes_a_key_whose_secret_is_shown_once_and_only_hashed_at_rest(api, admin, agent):
    response = make_key(api, admin, agent, rate_limit=30)

    assert response.status_code == 201
    data = response.json()["data"]
    key = data["key"]
    assert key.startswith(data["prefix"])
    assert data["prefix"].startswith("lms_")
    assert {k: data[k] for k in ("name", "owner_id", "scopes", "rate_limit", "is_revoked", "last_used_at")} == {
        "name": "broker site", "owner_id": agent.id, "scopes": ["loans:read", "loans:write"], "rate_limit": 30,
        "is_revoked": False, "last_used_at": None,
    }  # fmt: skip
    row = ApiKey.objects.get(pk=data["id"])
    secret = key.rsplit("_", 1)[1]
    assert secret not in row.digest
    assert secret not in str(ApiKey.objects.filter(pk=row.pk).values().first())
    assert "key" not in api.get(f"{KEYS}/{row.id}").json()["data"]  # never shown again
    assert AuditEvent.objects.filter(event="api_key.created", subject_id=str(row.id), actor_id=admin.id).exists()


@pytest.mark.django_db
def test_the_exchange_gives_a_short_lived_token_of_the_owner_with_the_keys_id_and_scopes(api, admin, agent):
    key = make_key(api, admin, agent).json()["data"]

    response = exchange(api, key["key"])

    assert response.status_code == 200
    data = response.json()["data"]
    claims = jwt.decode(data["access"], options={"verify_signature": False})
    assert int(claims["user_id"]) == agent.id
    assert claims["role"] == "agent"
    assert claims["is_approved"] is True
    assert claims["api_key_id"] == key["id"]
    assert claims["scope"] == "loans:read loans:write"
    assert claims["exp"] - claims["iat"] == 300
    assert data["api_key"] == {
        "id": key["id"], "name": "broker site", "owner_id": agent.id, "scopes": ["loans:read", "loans:write"],
        "rate_limit": 120,
    }  # fmt: skip
    assert ApiKey.objects.get(pk=key["id"]).last_used_at is not None


@pytest.mark.django_db
def test_a_key_expiring_soon_gets_a_token_that_ends_with_it(api, admin, agent):
    key = make_key(api, admin, agent, expires_at=(timezone.now() + timedelta(seconds=60)).isoformat()).json()["data"]

    claims = jwt.decode(exchange(api, key["key"]).json()["data"]["access"], options={"verify_signature": False})

    assert claims["exp"] - claims["iat"] <= 60


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spoil",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # a wrong secret
        lambda key: "lms_000000000000_" + key.rsplit("_", 1)[1],  # an unknown prefix
        lambda key: "",
        lambda key: "not-a-key",
    ],
    ids=["wrong-secret", "unknown-prefix", "blank", "garbage"],
)
def test_a_bad_key_is_refused_with_one_answer(api, admin, agent, spoil):
    key = make_key(api, admin, agent).json()["data"]["key"]

    response = exchange(api, spoil(key))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.django_db
def test_revoked_expired_and_ownerless_keys_are_refused(api, admin, agent):
    revoked = make_key(api, admin, agent).json()["data"]
    expired = make_key(api, admin, agent).json()["data"]
    api.as_user(admin).delete(f"{KEYS}/{revoked['id']}")
    ApiKey.objects.filter(pk=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert exchange(api, revoked["key"]).status_code == 401
    assert exchange(api, expired["key"]).status_code == 401
    owned = make_key(api, admin, agent).json()["data"]
    agent.approval = Approval.REJECTED
    agent.save(update_fields=["approval"])
    assert exchange(api, owned["key"]).status_code == 401


@pytest.mark.django_db
def test_revoking_twice_gives_the_same_answer_and_is_audited_once(api, admin, agent):
    key = make_key(api, admin, agent).json()["data"]

    first = api.as_user(admin).delete(f"{KEYS}/{key['id']}")
    again = api.delete(f"{KEYS}/{key['id']}")

    assert first.status_code == again.status_code == 200
    assert first.json()["data"]["revoked_at"] == again.json()["data"]["revoked_at"] is not None
    assert AuditEvent.objects.filter(event="api_key.revoked", subject_id=str(key["id"])).count() == 1


@pytest.mark.django_db
def test_rotating_gives_a_new_secret_with_the_same_grant_and_revokes_the_old_key(api, admin, agent):
    old = make_key(api, admin, agent, rate_limit=7).json()["data"]

    response = api.as_user(admin).post(f"{KEYS}/{old['id']}/rotate")

    assert response.status_code == 201
    new = response.json()["data"]
    assert new["key"] != old["key"]
    assert (new["name"], new["owner_id"], new["scopes"], new["rate_limit"]) == (
        old["name"], old["owner_id"], old["scopes"], 7,
    )  # fmt: skip
    assert exchange(api, old["key"]).status_code == 401
    assert exchange(api, new["key"]).status_code == 200
    assert api.as_user(admin).get(f"{KEYS}/{old['id']}").json()["data"]["replaced_by"] == new["id"]
    again = api.post(f"{KEYS}/{old['id']}/rotate")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "api_key_revoked"


@pytest.mark.django_db
def test_the_list_is_newest_first_and_filters_by_owner_and_revocation(api, admin, agent):
    first = make_key(api, admin, agent).json()["data"]
    second = make_key(api, admin, admin, scopes=["loans:decide"]).json()["data"]
    api.as_user(admin).delete(f"{KEYS}/{first['id']}")

    def ids(query=""):
        return [row["id"] for row in api.get(f"{KEYS}?{query}").json()["data"]["results"]]

    assert ids() == [second["id"], first["id"]]
    assert ids(f"owner_id={agent.id}") == [first["id"]]
    assert ids("revoked=true") == [first["id"]]
    assert ids("revoked=false") == [second["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scopes": ["loans:everything"]}, "scopes.0"),
        ({"scopes": []}, "scopes"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"name": ""}, "name"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_a_bad_key_request_is_a_400_on_the_field(api, admin, agent, fields, field):
    response = make_key(api, admin, agent, **fields)

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_keys_act_only_as_admins_or_approved_agents(api, admin, customer, pending_agent):
    for owner in (customer, pending_agent):
        response = make_key(api, admin, owner)
        assert response.status_code == 400
        assert "owner_id" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_only_admins_manage_keys(api, agent, customer):
    for user in (agent, customer):
        assert api.as_user(user).get(KEYS).status_code == 403
        assert make_key(api, user, agent).status_code == 403


@pytest.mark.django_db
def test_a_keys_token_cannot_call_any_user_service_endpoint(api, admin):
    key = make_key(api, admin, admin, scopes=["loans:read"]).json()["data"]["key"]
    token = exchange(api, key).json()["data"]["access"]

    for method, path in [("get", "/api/user/profile"), ("get", KEYS), ("get", "/api/user/list-users")]:
        response = getattr(api.as_token(token), method)(path)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "insufficient_scope"


@pytest.mark.django_db
def test_the_admin_site_makes_a_key_showing_the_secret_once_and_revokes_it(admin, agent):
    site = Client()
    site.force_login(admin)

    response = site.post(
        "/admin/users/apikey/add/",
        {"name": "agency", "owner": agent.id, "scopes": ["loans:read"], "rate_limit": "", "expires_at": ""},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    row = ApiKey.objects.get(name="agency")
    assert any(f"lms_{row.prefix}_" in text for text in shown), shown
    assert row.scopes == ["loans:read"]
    assert row.created_by_id == admin.id
    site.post("/admin/users/apikey/", {"action": "revoke_keys", "_selected_action": [row.id]}, follow=True)
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert row.revoked_by_id == admin.id


@pytest.mark.django_db
def test_the_admin_site_refuses_a_customer_as_owner(admin, customer):
    site = Client()
    site.force_login(admin)

    response = site.post("/admin/users/apikey/add/", {"name": "x", "owner": customer.id, "scopes": ["loans:read"]})

    assert response.status_code == 200  # the form again, with the error
    assert "not a customer" in response.content.decode()
    assert not ApiKey.objects.exists()
