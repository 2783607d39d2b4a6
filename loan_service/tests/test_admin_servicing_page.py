"""The loan's admin page: the servicing its status allows, its schedule and money read-only, who may act, the list."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from django.utils.formats import date_format

from loans import selectors, services, servicing
from loans.models import Loan, LoanTransaction, Statement
from tests.conftest import ADMIN_ID, AGENT_ID, CUSTOMER_ID, disbursed, months_ago
from tests.test_admin_servicing import page, repayment_form, sign_in

pytestmark = pytest.mark.django_db

TOOLS = re.compile(r'href="/admin/loans/loan/\d+/(disburse|cancel|repayment|write-off)/"')


@pytest.fixture
def signed_in(user_service_server, client):
    return sign_in(client, user_service_server)


def approved() -> Loan:
    loan = services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("10000"), months=12)
    return services.decide_loan(loan_id=loan.id, admin_id=ADMIN_ID, status="APPROVED")


def loan_in(status: str) -> Loan:
    """A loan of `status`, got there through the services."""
    if status == "NEW":
        return services.create_loan(agent_id=AGENT_ID, customer_id=CUSTOMER_ID, principal=Decimal("10000"), months=12)
    if status == "APPROVED":
        return approved()
    if status == "CANCELLED":
        loan = approved()
        Loan.objects.filter(pk=loan.id).update(decided_at=timezone.now() - timedelta(days=60))
        return servicing.cancel_loan(loan_id=loan.id, admin_id=ADMIN_ID)
    if status == "CLOSED":
        loan = disbursed(months=1, on=months_ago(2))
        payoff = selectors.payoff_of(loan, timezone.localdate()).total
        return servicing.record_repayment(loan_id=loan.id, user_id=ADMIN_ID, amount=payoff)[1]
    if status == "WRITTEN_OFF":
        loan = disbursed(on=timezone.localdate() - timedelta(days=150))
        return servicing.write_off_loan(loan_id=loan.id, admin_id=ADMIN_ID, note="gone")
    return disbursed(on=months_ago(1))


@pytest.mark.parametrize(
    ("status", "tools"),
    [
        ("NEW", []),
        ("APPROVED", ["disburse", "cancel"]),
        ("CANCELLED", []),
        ("DISBURSED", ["repayment", "write-off"]),
        ("CLOSED", []),
        ("WRITTEN_OFF", []),
    ],
    ids=str,
)
def test_the_change_page_offers_what_the_loans_status_allows(signed_in, status, tools):
    loan = loan_in(status)
    assert loan.status == status

    response = signed_in.get(f"/admin/loans/loan/{loan.id}/change/")

    assert response.status_code == 200
    assert TOOLS.findall(response.content.decode()) == tools
    assert "History" in response.content.decode()  # the stock tools stay


@pytest.mark.parametrize(
    ("action", "label", "status"),
    [("disburse", "Disburse", "DISBURSED"), ("cancel", "Cancel", "DISBURSED"), ("write-off", "Write off", "CLOSED")],
)
def test_a_form_that_does_not_apply_sends_back_to_the_loan(signed_in, action, label, status):
    loan = loan_in(status)

    response = signed_in.get(page(loan.id, action), follow=True)

    assert response.redirect_chain == [(f"/admin/loans/loan/{loan.id}/change/", 302)]
    assert [str(message) for message in response.context["messages"]] == [f"{label} does not apply to {loan}."]


def test_reverse_is_offered_on_each_repayment_not_yet_reversed(signed_in):
    loan = disbursed(on=months_ago(3))
    kept, _ = servicing.record_repayment(loan_id=loan.id, user_id=ADMIN_ID, amount=Decimal("100.00"))
    undone, _ = servicing.record_repayment(loan_id=loan.id, user_id=ADMIN_ID, amount=Decimal("200.00"))
    servicing.reverse_transaction(loan_id=loan.id, transaction_id=undone.id, admin_id=ADMIN_ID, note="bounced")

    html = signed_in.get(f"/admin/loans/loan/{loan.id}/change/").content.decode()

    # Not the payout, not the reversed repayment, not the reversal.
    assert re.findall(r"/transactions/(\d+)/reverse/", html) == [str(kept.id)]
    assert f"repayment of {undone.on}" in html  # what the reversal undid


def test_a_written_off_loan_offers_no_reversal(signed_in):
    loan = loan_in("WRITTEN_OFF")

    html = signed_in.get(f"/admin/loans/loan/{loan.id}/change/").content.decode()

    assert "/reverse/" not in html


def test_the_schedule_transactions_and_statements_are_shown_and_cannot_be_edited(signed_in):
    loan = disbursed(months=12, on=months_ago(2))
    servicing.record_repayment(loan_id=loan.id, user_id=ADMIN_ID, amount=Decimal("871.97"))
    Statement.objects.create(loan=loan, requested_by=ADMIN_ID)

    response = signed_in.get(f"/admin/loans/loan/{loan.id}/change/")
    html = response.content.decode()

    inlines = {formset.formset.prefix: formset for formset in response.context["inline_admin_formsets"]}
    assert {prefix: len(formset.formset.forms) for prefix, formset in inlines.items()} == {
        "instalments": 12,
        "transactions": 2,
        "statements": 1,
    }
    for formset in inlines.values():
        assert (formset.has_add_permission, formset.has_change_permission, formset.has_delete_permission) == (
            False,
            False,
            False,
        )
    assert not re.search(
        r'<(input|select|textarea)[^>]*name="(instalments|transactions|statements)-\d+-(?!id"|loan")', html
    )
    assert "871.97" in html
    assert date_format(loan.instalments.get(number=12).due_date) in html
    changed = signed_in.post(f"/admin/loans/loan/{loan.id}/change/", {"transactions-0-amount": "1.00"})
    assert changed.status_code == 403


def test_a_ready_statement_links_its_pdf(signed_in, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    loan = disbursed(on=months_ago(1))
    ready = Statement.objects.create(loan=loan, requested_by=ADMIN_ID, status=Statement.Status.READY)
    ready.file.save("statement.pdf", ContentFile(b"%PDF-1.4 a statement"))
    queued = Statement.objects.create(loan=loan, requested_by=ADMIN_ID)

    html = signed_in.get(f"/admin/loans/loan/{loan.id}/change/").content.decode()
    pdf = signed_in.get(f"/admin/loans/loan/{loan.id}/statements/{ready.pk}/pdf/")

    assert re.findall(r"/statements/([0-9a-f-]+)/pdf/", html) == [str(ready.pk)]
    assert (pdf.status_code, pdf["Content-Type"], b"".join(pdf.streaming_content)) == (
        200,
        "application/pdf",
        b"%PDF-1.4 a statement",
    )
    assert signed_in.get(f"/admin/loans/loan/{loan.id}/statements/{queued.pk}/pdf/").status_code == 404


def staff(username: str, *, superuser: bool) -> Client:
    """A client signed in as a local staff row (not through user_service)."""
    user = get_user_model().objects.create(username=username, is_staff=True, is_superuser=superuser)
    client = Client()
    client.force_login(user)
    return client


def test_only_an_admin_of_user_service_may_service_a_loan(client):
    loan = disbursed(on=months_ago(1))
    post = {"amount": "10.00", "date": timezone.localdate().isoformat(), "token": str(uuid.uuid4())}
    local_superuser = staff("ops", superuser=True)  # no user_service id to record
    no_rights = staff("admin-5", superuser=False)  # named like a mirror row, without the admin's rights

    anonymous = client.get(page(loan.id, "repayment"))

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
    for other in (local_superuser, no_rights):
        assert other.get(page(loan.id, "repayment")).status_code == 403
        assert other.post(page(loan.id, "repayment"), post).status_code == 403
    assert not TOOLS.findall(local_superuser.get(f"/admin/loans/loan/{loan.id}/change/").content.decode())
    assert not LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment").exists()


def test_a_post_without_the_csrf_token_is_refused(signed_in):
    loan = disbursed(on=months_ago(1))
    data = repayment_form(signed_in, loan.id, "10.00")
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = signed_in.cookies

    assert strict.post(page(loan.id, "repayment"), data).status_code == 403
    assert not LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment").exists()


def test_the_list_shows_balances_and_filters_the_loans_past_due(signed_in):
    late = disbursed(on=timezone.localdate() - timedelta(days=75))
    current = disbursed(on=timezone.localdate() - timedelta(days=10))

    listing = signed_in.get("/admin/loans/loan/")
    past_due = signed_in.get("/admin/loans/loan/?overdue=yes")
    on_time = signed_in.get("/admin/loans/loan/?overdue=no")

    assert {"total_outstanding", "days_past_due"} <= set(listing.context["cl"].list_display)
    assert "?status__exact=WRITTEN_OFF" in listing.content.decode()  # the new statuses in the filter
    assert [loan.id for loan in past_due.context["cl"].result_list] == [late.id]
    assert [loan.id for loan in on_time.context["cl"].result_list] == [current.id]
