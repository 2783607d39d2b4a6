"""The Django admin of loan_service: one admin identity (user_service's), and decisions through the services."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.outbox.models import OutboxMessage
from loans.models import Loan

pytestmark = pytest.mark.django_db

ADMIN = {"id": 1, "email": "boss@example.com", "role": "admin", "first_name": "B", "last_name": "S"}


@pytest.fixture
def admin_login(user_service_server, client):
    from common.admin_sso import _user_service

    _user_service.cache_clear()  # the sign-in client is built once per process from USER_SERVICE_URL
    user_service_server.logins = {
        ("boss@example.com", "right-Pass-1"): ADMIN,
        ("agent@example.com", "right-Pass-1"): {**ADMIN, "id": 7, "email": "agent@example.com", "role": "agent"},
    }
    return client


def test_an_admin_of_user_service_signs_in_and_sees_the_loans(admin_login, new_loan):
    response = admin_login.post("/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"})

    assert response.status_code == 302
    assert admin_login.get("/admin/loans/loan/").status_code == 200
    assert admin_login.get(f"/admin/loans/loan/{new_loan.id}/history/").status_code == 200
    mirror = get_user_model().objects.get(username="admin-1")
    assert (mirror.is_staff, mirror.has_usable_password()) == (True, False)


def test_the_sign_in_is_counted_against_the_admins_address_not_this_services(admin_login, user_service_server):
    # user_service throttles sign-ins per address: were it this service's, ten wrong guesses by anyone
    # would lock every admin out of this admin site.
    admin_login.post(
        "/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"}, REMOTE_ADDR="203.0.113.5"
    )

    [sign_in] = [call for call in user_service_server.calls if call["path"] == "/api/user/login"]
    assert sign_in["headers"]["X-Forwarded-For"] == "203.0.113.5"


def forwarded_addresses(user_service_server) -> list[str]:
    sign_ins = [call for call in user_service_server.calls if call["path"] == "/api/user/login"]
    return [call["headers"]["X-Forwarded-For"] for call in sign_ins]


def test_a_forged_forwarded_address_on_this_port_is_not_the_admins_address(admin_login, user_service_server):
    # The admin site is reached on this service's own port, where anyone can write X-Forwarded-For: were
    # it believed, every guess would be counted against a fresh address by user_service's sign-in limit.
    for n in range(4):
        admin_login.post(
            "/admin/login/",
            {"username": "boss@example.com", "password": f"guess-{n}"},
            REMOTE_ADDR="203.0.113.5",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )

    assert forwarded_addresses(user_service_server) == ["203.0.113.5"] * 4


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_admins(admin_login, user_service_server, settings):
    settings.ADMIN_TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    for peer in ("10.1.2.3", "192.0.2.1", "192.0.2.2"):
        admin_login.post(
            "/admin/login/",
            {"username": "boss@example.com", "password": "wrong"},
            REMOTE_ADDR=peer,
            HTTP_X_FORWARDED_FOR="198.51.100.7",
        )

    assert forwarded_addresses(user_service_server) == ["198.51.100.7", "198.51.100.7", "192.0.2.2"]


@pytest.mark.parametrize(
    ("email", "password"), [("agent@example.com", "right-Pass-1"), ("boss@example.com", "wrong"), ("x@y.z", "a")]
)
def test_nobody_else_gets_in(admin_login, email, password):
    admin_login.post("/admin/login/", {"username": email, "password": password})

    assert admin_login.get("/admin/loans/loan/").status_code == 302  # back to the login page
    assert not get_user_model().objects.exists()


def test_the_approve_action_uses_the_same_rules_and_events_as_the_api(admin_login, new_loan):
    admin_login.post("/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"})

    response = admin_login.post(
        "/admin/loans/loan/", {"action": "approve_loans", "_selected_action": [new_loan.id]}, follow=True
    )
    again = admin_login.post("/admin/loans/loan/", {"action": "reject_loans", "_selected_action": [new_loan.id]})

    loan = Loan.objects.get(pk=new_loan.id)
    assert response.status_code == 200
    assert again.status_code == 302
    assert (loan.status, loan.decided_by) == ("APPROVED", 1)
    assert OutboxMessage.objects.filter(name="loan.approved").count() == 1
    assert not OutboxMessage.objects.filter(name="loan.rejected").exists()


def test_the_reject_action_records_the_admin_and_one_event(admin_login, new_loan):
    admin_login.post("/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"})

    admin_login.post("/admin/loans/loan/", {"action": "reject_loans", "_selected_action": [new_loan.id]})

    loan = Loan.objects.get(pk=new_loan.id)
    assert (loan.status, loan.decided_by, loan.decision_note) == ("REJECTED", 1, "Decided in the admin.")
    assert loan.history.latest().history_user_id == 1
    assert OutboxMessage.objects.filter(name="loan.rejected").count() == 1


def test_the_list_filters_by_status_and_finds_a_customer(admin_login, user_service_server, new_loan):
    from loans import services

    user_service_server.users[123456] = {"id": 123456, "role": "customer", "is_active": True, "email": "z@example.com"}
    other = services.create_loan(agent_id=7, customer_id=123456, principal=new_loan.principal, months=12)
    services.decide_loan(loan_id=other.id, admin_id=1, status="APPROVED")
    admin_login.post("/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"})

    approved = admin_login.get("/admin/loans/loan/?status__exact=APPROVED")
    by_customer = admin_login.get("/admin/loans/loan/?q=123456")
    new_ones = admin_login.get("/admin/loans/loan/?status__exact=NEW")

    assert [loan.id for loan in approved.context["cl"].result_list] == [other.id]
    assert [loan.id for loan in by_customer.context["cl"].result_list] == [other.id]
    assert [loan.id for loan in new_ones.context["cl"].result_list] == [new_loan.id]


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("customer", True),
        ("agent", True),
        ("loan id", True),
        ("no match", False),
        ("letters", False),
        ("huge", False),
        ("superscript", False),
        ("other script", False),
    ],
    ids=[
        "customer-id",
        "agent-id",
        "loan-id",
        "unknown-number",
        "letters",
        "beyond-bigint",
        "superscript-two",
        "arabic-digit",
    ],
)
def test_search_by_number_is_an_exact_integer_lookup(admin_login, new_loan, term, found):
    terms = {
        "customer": str(new_loan.customer_id),
        "agent": str(new_loan.agent_id),
        "loan id": str(new_loan.id),
        "no match": "424242",
        "letters": "abc",
        "huge": "9" * 30,
        "superscript": "²",  # isdigit() says yes, int() raises
        "other script": str(new_loan.id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),  # int() would accept
    }
    admin_login.post("/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"})

    with CaptureQueriesContext(connection) as queries:
        response = admin_login.get("/admin/loans/loan/", {"q": terms[term]})

    assert response.status_code == 200
    assert [loan.id for loan in response.context["cl"].result_list] == ([new_loan.id] if found else [])
    assert not [query["sql"] for query in queries if "UPPER(" in query["sql"]]  # a cast defeats the indexes
