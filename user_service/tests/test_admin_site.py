"""The Django admin for users: filters, and actions that run the same use cases (and events) as the API."""

import pytest
from django.test import Client

from common.audit.models import AuditEvent
from common.outbox.models import OutboxMessage
from tests.factories import PASSWORD, UserFactory, give_totp
from users.models import Approval, Role

CHANGELIST = "/admin/users/user/"


@pytest.fixture
def site(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def listed(site, query: str = "") -> set[int]:
    response = site.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    return {user.id for user in response.context["cl"].result_list}


def run_action(site, action: str, *users):
    return site.post(CHANGELIST, {"action": action, "_selected_action": [user.id for user in users]}, follow=True)


def login_status(api, user, password: str = PASSWORD) -> int:
    return api.post("/api/user/login", {"email": user.email, "password": password}, format="json").status_code


@pytest.mark.django_db
def test_the_list_filters_by_role_and_approval(site, admin, customer, agent, pending_agent):
    assert listed(site) == {admin.id, customer.id, agent.id, pending_agent.id}
    assert listed(site, "role__exact=agent") == {agent.id, pending_agent.id}
    assert listed(site, "role__exact=agent&approval__exact=pending") == {pending_agent.id}
    assert listed(site, "approval__exact=approved&role__exact=customer") == {customer.id}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "api_action", "event"),
    [("approve_agents", "approve", "agent.approved"), ("reject_agents", "reject", "agent.rejected")],
    ids=["approve", "reject"],
)
def test_a_decision_in_the_admin_publishes_the_same_event_as_the_api(api, site, admin, action, api_action, event):
    by_admin_site, by_api = UserFactory.create_batch(2, role=Role.AGENT, approval=Approval.PENDING)

    run_action(site, action, by_admin_site)
    api.as_user(admin).put(f"/api/user/approve-delete/{by_api.id}", {"action": api_action}, format="json")

    site_event, api_event = (OutboxMessage.objects.get(message__payload__user_id=u.id) for u in (by_admin_site, by_api))
    assert site_event.name == api_event.name == event
    assert site_event.message["payload"]["decided_by"] == admin.id
    assert set(site_event.message["payload"]) == set(api_event.message["payload"])
    assert site_event.message["version"] == api_event.message["version"]


@pytest.mark.django_db
def test_a_rejected_agent_cannot_sign_in_and_others_are_skipped_with_the_reason(api, site, pending_agent, customer):
    response = run_action(site, "reject_agents", pending_agent, customer)

    shown = [str(message) for message in response.context["messages"]]
    assert "1 user(s) rejected." in shown
    assert any(message.startswith("1 skipped: Only an agent waiting for approval") for message in shown)
    assert login_status(api, pending_agent) == 403
    customer.refresh_from_db()
    assert customer.approval == Approval.APPROVED


@pytest.mark.django_db
def test_deactivating_in_the_admin_sets_deleted_at_and_revokes_refresh_tokens(api, site, customer):
    login = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json")
    refresh = login.json()["data"]["refresh"]

    run_action(site, "deactivate_users", customer)

    customer.refresh_from_db()
    assert customer.is_active is False
    assert customer.deleted_at is not None
    assert api.post("/api/user/token/refresh", {"refresh": refresh}, format="json").status_code == 401
    assert login_status(api, customer) == 401


@pytest.mark.django_db
def test_an_admin_cannot_deactivate_themselves(site, admin):
    response = run_action(site, "deactivate_users", admin)

    admin.refresh_from_db()
    assert admin.is_active is True
    assert any("cannot deactivate their own" in str(message) for message in response.context["messages"])


@pytest.mark.django_db
def test_the_change_form_does_not_edit_role_approval_or_account_flags(site, pending_agent):
    page = site.get(f"{CHANGELIST}{pending_agent.id}/change/")
    response = site.post(
        f"{CHANGELIST}{pending_agent.id}/change/",
        {
            "email": pending_agent.email,
            "first_name": "Renamed",
            "last_name": pending_agent.last_name,
            "role": Role.ADMIN,
            "approval": Approval.APPROVED,
            "is_active": "",
            "is_staff": "on",
            "is_superuser": "on",
        },
    )

    pending_agent.refresh_from_db()
    assert page.status_code == 200
    for field in ("role", "approval", "is_active", "is_staff", "is_superuser"):
        assert f'name="{field}"' not in page.content.decode()
    assert response.status_code == 302
    assert pending_agent.first_name == "Renamed"
    assert (pending_agent.role, pending_agent.approval) == (Role.AGENT, Approval.PENDING)
    assert (pending_agent.is_active, pending_agent.is_staff, pending_agent.is_superuser) == (True, False, False)
    assert not OutboxMessage.objects.filter(name__startswith="agent.").exists()


@pytest.mark.django_db
def test_users_cannot_be_deleted_from_the_admin(site, customer):
    response = site.post(f"{CHANGELIST}{customer.id}/delete/", {"post": "yes"})

    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.is_active is True


@pytest.mark.django_db
def test_a_password_set_in_the_admin_revokes_the_users_refresh_tokens(api, site, customer):
    login = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json")
    new_password = "admin-Set-Secret-31"

    response = site.post(
        f"{CHANGELIST}{customer.id}/password/",
        {"password1": new_password, "password2": new_password, "usable_password": "true", "set-password": ""},
    )

    assert response.status_code == 302
    assert response.url == f"{CHANGELIST}{customer.id}/change/"
    refreshed = api.post("/api/user/token/refresh", {"refresh": login.json()["data"]["refresh"]}, format="json")
    assert refreshed.status_code == 401
    assert login_status(api, customer, new_password) == 200


ADMIN_LOGIN = "/admin/login/"


@pytest.mark.django_db
def test_the_admin_sign_in_form_is_throttled_per_email_like_the_login_api(login_rates, admin):
    login_rates(per_email="3/min")
    client = Client()

    guesses = [
        client.post(ADMIN_LOGIN, {"username": admin.email, "password": f"guess-{n}"}).status_code for n in range(4)
    ]
    right_password = client.post(ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD})

    assert guesses == [200, 200, 200, 429]  # the form again three times, then refused
    assert right_password.status_code == 429  # the limit holds whatever the password
    assert int(right_password["Retry-After"]) >= 1
    assert Client().get("/admin/users/user/").status_code == 302  # nobody got in


@pytest.mark.django_db
def test_the_admin_sign_in_form_shares_the_per_address_limit_with_the_login_api(login_rates, api, admin):
    login_rates(per_ip="2/min")
    code = give_totp(admin)
    address = {"REMOTE_ADDR": "203.0.113.9"}

    api_attempts = [
        api.post("/api/user/login", {"email": f"x{n}@example.com", "password": "nope-1A"}, format="json", **address)
        for n in range(2)
    ]
    form = Client().post(ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD}, **address)
    elsewhere = Client().post(
        ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD, "otp_code": code()}, REMOTE_ADDR="198.51.100.1"
    )

    assert [reply.status_code for reply in api_attempts] == [401, 401]
    assert form.status_code == 429
    assert elsewhere.status_code == 302  # another address still signs in


@pytest.mark.django_db
def test_forged_forwarded_addresses_on_the_admin_port_all_count_against_the_one_real_address(login_rates, admin):
    login_rates(per_ip="3/min")
    code = give_totp(admin)
    client = Client()

    guesses = [
        client.post(
            ADMIN_LOGIN,
            {"username": f"guess-{n}@example.com", "password": "nope-1A"},  # a new email each time: only the address
            REMOTE_ADDR="203.0.113.7",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(5)
    ]
    right_password = client.post(
        ADMIN_LOGIN,
        {"username": admin.email, "password": PASSWORD},
        REMOTE_ADDR="203.0.113.7",
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )

    assert guesses == [200, 200, 200, 429, 429]
    assert right_password.status_code == 429
    signed_in = Client().post(ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD, "otp_code": code()})
    assert signed_in.status_code == 302


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_admin_form_counts_the_forwarded_address(login_rates, settings, admin):
    login_rates(per_ip="3/min")
    settings.ADMIN_TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = {"REMOTE_ADDR": "10.1.2.3"}

    def attempt(client_address: str) -> int:
        body = {"username": f"x-{client_address}@example.com", "password": "nope-1A"}
        return Client().post(ADMIN_LOGIN, body, HTTP_X_FORWARDED_FOR=client_address, **proxy).status_code

    assert [attempt("198.51.100.1") for _ in range(4)] == [200, 200, 200, 429]
    assert attempt("198.51.100.2") == 200  # another client behind the same proxy is counted apart


@pytest.mark.django_db
def test_the_admin_sign_in_asks_for_the_second_factor_and_refuses_a_wrong_or_missing_code(admin):
    code = give_totp(admin)

    missing = Client().post(ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD})
    wrong = Client().post(ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD, "otp_code": "000000"})
    client = Client()
    right = client.post(ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD, "otp_code": code()})

    assert missing.status_code == 200
    assert "Enter the authentication code" in missing.content.decode()
    assert wrong.status_code == 200
    assert "The authentication code is wrong" in wrong.content.decode()
    assert 'name="otp_code"' in missing.content.decode()
    assert right.status_code == 302
    assert client.get(CHANGELIST).status_code == 200
    assert AuditEvent.objects.filter(event="mfa.failed", subject_id=str(admin.id)).count() == 1
    assert AuditEvent.objects.filter(event="login.succeeded", subject_id=str(admin.id)).count() == 1


@pytest.mark.django_db
def test_an_admin_without_a_second_factor_is_told_to_set_one_up_first(admin):
    response = Client().post(ADMIN_LOGIN, {"username": admin.email, "password": PASSWORD})

    assert response.status_code == 200
    assert "no second factor yet" in response.content.decode()
    assert Client().get(CHANGELIST).status_code == 302


@pytest.mark.django_db
def test_the_reset_action_removes_a_users_factor(api, site, admin, customer):
    give_totp(customer)
    tokens = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json").json()
    api.credentials()

    run_action(site, "reset_second_factors", customer)

    assert tokens["data"]["mfa_required"] is True  # before the reset
    after = api.post("/api/user/login", {"email": customer.email, "password": PASSWORD}, format="json")
    assert "access" in after.json()["data"]  # a customer without a factor: one step again
    [record] = AuditEvent.objects.filter(event="mfa.reset")
    assert (record.actor_id, record.subject_id) == (admin.id, str(customer.id))
