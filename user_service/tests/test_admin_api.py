import pytest

from common.outbox.models import OutboxMessage
from tests.factories import UserFactory
from users.models import Approval, Role, User


def approve_delete(api, user_id, action=None):
    path = f"/api/user/approve-delete/{user_id}"
    return api.put(path, {"action": action}, format="json") if action else api.delete(path)


@pytest.mark.django_db
def test_admin_approves_a_pending_agent(api, admin, pending_agent):
    response = approve_delete(api.as_user(admin), pending_agent.id, "approve")

    assert response.status_code == 200
    assert response.json()["data"]["is_approved"] is True
    event = OutboxMessage.objects.get(name="agent.approved")
    assert event.message["payload"]["user_id"] == pending_agent.id
    assert event.message["payload"]["decided_by"] == admin.id


@pytest.mark.django_db
def test_admin_rejects_a_pending_agent_who_then_cannot_sign_in(api, admin, pending_agent):
    response = approve_delete(api.as_user(admin), pending_agent.id, "reject")
    api.credentials()
    login = api.post("/api/user/login", {"email": pending_agent.email, "password": "correct-Horse-7"}, format="json")

    assert response.status_code == 200
    assert response.json()["data"]["is_approved"] is False
    assert OutboxMessage.objects.filter(name="agent.rejected").count() == 1
    assert login.status_code == 403
    assert login.json()["error"]["code"] == "agent_rejected"


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["agent", "customer", "admin"])
def test_deciding_anyone_but_a_pending_agent_is_409(api, admin, request, target):
    user = request.getfixturevalue(target)

    response = approve_delete(api.as_user(admin), user.id, "approve")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agent_already_decided"
    assert not OutboxMessage.objects.filter(name__startswith="agent.").exists()


@pytest.mark.django_db
def test_second_decision_is_409(api, admin, pending_agent):
    approve_delete(api.as_user(admin), pending_agent.id, "approve")

    assert approve_delete(api.as_user(admin), pending_agent.id, "reject").status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["APPROVE", "delete", ""], ids=["uppercase", "other-word", "blank"])
def test_unknown_action_is_400(api, admin, pending_agent, action):
    response = api.as_user(admin).put(f"/api/user/approve-delete/{pending_agent.id}", {"action": action}, format="json")

    assert response.status_code == 400
    assert "action" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_unknown_user_is_404(api, admin):
    assert approve_delete(api.as_user(admin), 999_999, "approve").status_code == 404


@pytest.mark.django_db
def test_delete_deactivates_an_agent(api, admin, agent):
    response = approve_delete(api.as_user(admin), agent.id)

    agent.refresh_from_db()
    assert response.status_code == 204
    assert not response.content
    assert agent.is_active is False
    assert agent.deleted_at is not None


@pytest.mark.django_db
def test_delete_of_a_customer_is_404(api, admin, customer):
    assert approve_delete(api.as_user(admin), customer.id).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["customer", "agent", "pending_agent"])
def test_only_admins_decide_agents(api, request, role, pending_agent):
    caller = request.getfixturevalue(role)

    response = approve_delete(api.as_user(caller), pending_agent.id, "approve")

    assert response.status_code == 403
    pending_agent.refresh_from_db()
    assert pending_agent.approval == Approval.PENDING


@pytest.mark.django_db
def test_admin_creates_an_admin(api, admin):
    response = api.as_user(admin).post(
        "/api/user/create-admin",
        {"email": "root2@example.com", "password": "very-Strong-99", "first_name": "R", "last_name": "T"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["data"]["role"] == "admin"
    assert User.objects.get(email="root2@example.com").is_staff


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["customer", "agent"])
def test_only_admins_create_admins(api, request, role):
    response = api.as_user(request.getfixturevalue(role)).post(
        "/api/user/create-admin", {"email": "x@example.com", "password": "very-Strong-99"}, format="json"
    )

    assert response.status_code == 403
    assert not User.objects.filter(email="x@example.com").exists()


@pytest.mark.django_db
def test_list_users_filters_by_role_and_approval(api, admin, customer, agent, pending_agent):
    api.as_user(admin)

    everyone = api.get("/api/user/list-users").json()["data"]
    agents = api.get("/api/user/list-users?role=agent").json()["data"]
    waiting = api.get("/api/user/list-users?role=agent&is_approved=false").json()["data"]

    assert everyone["count"] == 4
    assert {u["id"] for u in agents["results"]} == {agent.id, pending_agent.id}
    assert [u["id"] for u in waiting["results"]] == [pending_agent.id]


@pytest.mark.django_db
def test_list_users_rejects_an_unknown_role_filter(api, admin):
    response = api.as_user(admin).get("/api/user/list-users?role=wizard")

    assert response.status_code == 400
    assert "role" in response.json()["error"]["details"]


@pytest.mark.django_db
def test_list_users_is_admin_only(api, agent):
    assert api.as_user(agent).get("/api/user/list-users").status_code == 403


@pytest.mark.django_db
def test_list_users_pages_and_clamps_the_page_size(api, admin):
    UserFactory.create_batch(24, role=Role.CUSTOMER)
    api.as_user(admin)

    first = api.get("/api/user/list-users?page_size=10").json()["data"]
    last = api.get("/api/user/list-users?page_size=10&page=3").json()["data"]
    past = api.get("/api/user/list-users?page=99").json()["data"]
    clamped = api.get("/api/user/list-users?page_size=1000").json()["data"]

    assert (first["count"], first["page"], first["next"], first["previous"], len(first["results"])) == (
        25,
        1,
        2,
        None,
        10,
    )
    assert (last["next"], last["previous"], len(last["results"])) == (None, 2, 5)
    assert past["results"] == []
    assert clamped["page_size"] == 100


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["page=0", "page=abc", "page_size=-1"])
def test_bad_paging_is_400(api, admin, query):
    assert api.as_user(admin).get(f"/api/user/list-users?{query}").status_code == 400


@pytest.mark.django_db
def test_list_approvals_shows_agents_waiting_oldest_first(api, admin, agent):
    first = UserFactory(role=Role.AGENT, approval=Approval.PENDING)
    second = UserFactory(role=Role.AGENT, approval=Approval.PENDING)

    data = api.as_user(admin).get("/api/user/list-approvals").json()["data"]

    assert [u["id"] for u in data["results"]] == [first.id, second.id]


@pytest.mark.django_db
def test_approved_agent_lists_and_searches_customers(api, agent, customer, pending_agent):
    UserFactory(role=Role.CUSTOMER, first_name="Zelda", last_name="Quill")

    everyone = api.as_user(agent).get("/api/user/list-agents").json()["data"]
    found = api.as_user(agent).get("/api/user/list-agents?search=zeld").json()["data"]

    assert everyone["count"] == 2
    assert {u["role"] for u in everyone["results"]} == {"customer"}
    assert [u["first_name"] for u in found["results"]] == ["Zelda"]


@pytest.mark.django_db
def test_pending_agent_cannot_list_customers(api, pending_agent):
    response = api.as_user(pending_agent).get("/api/user/list-agents")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"


@pytest.mark.django_db
def test_customer_cannot_list_customers(api, customer):
    assert api.as_user(customer).get("/api/user/list-agents").status_code == 403
