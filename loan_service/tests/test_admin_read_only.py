"""The loan admin only reads: decisions change through the approve / reject actions, never a form or a revert."""

import re

import pytest

from common.outbox.models import OutboxMessage
from loans import services
from loans.models import Loan, LoanStatusCount
from tests.conftest import ADMIN_ID

pytestmark = pytest.mark.django_db

ADMIN = {"id": ADMIN_ID, "email": "boss@example.com", "role": "admin", "first_name": "B", "last_name": "S"}


@pytest.fixture
def signed_in(user_service_server, client):
    from common.admin_sso import _user_service

    _user_service.cache_clear()  # the sign-in client is built once per process from USER_SERVICE_URL
    user_service_server.logins = {("boss@example.com", "right-Pass-1"): ADMIN}
    assert client.post("/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"}).status_code == 302
    return client


@pytest.fixture
def approved_loan(new_loan):
    return services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")


def snapshot(loan: Loan) -> tuple:
    """Everything a stray save would change: the row, its history, the events and the kept counts."""
    row = Loan.objects.values_list("status", "decided_by", "start_date", "months").get(pk=loan.id)
    counts = dict(LoanStatusCount.objects.values_list("status", "count"))
    return row, Loan.history.filter(id=loan.id).count(), OutboxMessage.objects.count(), counts


FORM = {
    "status": "NEW",
    "months": "12",
    "principal": "10000.00",
    "decided_by": "",
    "decided_at_0": "",
    "decided_at_1": "",
    "start_date": "",
    "end_date": "",
    "_save": "Save",
}


def test_the_change_form_cannot_undo_a_decision(signed_in, approved_loan):
    before = snapshot(approved_loan)

    response = signed_in.post(f"/admin/loans/loan/{approved_loan.id}/change/", FORM)

    assert response.status_code == 403
    assert snapshot(approved_loan) == before


def test_reverting_a_decided_loan_to_its_created_version_is_refused(signed_in, approved_loan):
    created = approved_loan.history.earliest()
    before = snapshot(approved_loan)

    response = signed_in.post(f"/admin/loans/loan/{approved_loan.id}/history/{created.history_id}/", FORM)

    assert response.status_code == 403
    assert snapshot(approved_loan) == before
    assert Loan.objects.get(pk=approved_loan.id).status == "APPROVED"


def test_the_loan_and_its_versions_are_shown_without_save_or_revert_buttons(signed_in, approved_loan, settings):
    created = approved_loan.history.earliest()

    change_page = signed_in.get(f"/admin/loans/loan/{approved_loan.id}/change/")
    version_page = signed_in.get(f"/admin/loans/loan/{approved_loan.id}/history/{created.history_id}/")
    history_page = signed_in.get(f"/admin/loans/loan/{approved_loan.id}/history/")

    assert settings.SIMPLE_HISTORY_REVERT_DISABLED is True
    assert (change_page.status_code, version_page.status_code, history_page.status_code) == (200, 200, 200)
    assert 'name="_save"' not in change_page.content.decode()
    assert 'name="_save"' not in version_page.content.decode()
    assert "Revert" not in version_page.content.decode()


def test_the_history_shows_who_changed_it_as_a_user_service_id_not_a_link(signed_in, approved_loan):
    response = signed_in.get(f"/admin/loans/loan/{approved_loan.id}/history/")

    page = response.content.decode()
    assert response.status_code == 200
    assert not re.search(r"/admin/auth/user/\d+/change/", page)  # the local row of that number is someone else
    assert f"user_service #{ADMIN_ID}" in page
