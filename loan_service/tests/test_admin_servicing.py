"""Servicing a loan from its admin page: each form calls the same use case as the API, or writes nothing."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.utils import timezone

from common.outbox.models import OutboxMessage
from common.testing import run_together
from loans import selectors, services, servicing
from loans.models import Instalment, Loan, LoanTransaction
from tests.conftest import ADMIN_ID, disbursed, months_ago

pytestmark = pytest.mark.django_db

ADMIN = {"id": ADMIN_ID, "email": "boss@example.com", "role": "admin", "first_name": "B", "last_name": "S"}


def sign_in(client: Client, user_service_server) -> Client:
    from common.admin_sso import _user_service

    _user_service.cache_clear()  # the sign-in client is built once per process from USER_SERVICE_URL
    user_service_server.logins = {("boss@example.com", "right-Pass-1"): ADMIN}
    assert client.post("/admin/login/", {"username": "boss@example.com", "password": "right-Pass-1"}).status_code == 302
    return client


@pytest.fixture
def signed_in(user_service_server, client):
    return sign_in(client, user_service_server)


@pytest.fixture
def approved_loan(new_loan):
    return services.decide_loan(loan_id=new_loan.id, admin_id=ADMIN_ID, status="APPROVED")


def page(loan_id: int, action: str) -> str:
    return f"/admin/loans/loan/{loan_id}/{action}/"


def written(loan_id: int) -> tuple:
    """Everything a servicing action writes: the row, its history, instalments, transactions, events, admin log."""
    return (
        Loan.objects.filter(pk=loan_id).values().get(),
        Loan.history.filter(id=loan_id).count(),
        list(Instalment.objects.filter(loan_id=loan_id).values()),
        list(LoanTransaction.objects.filter(loan_id=loan_id).values()),
        OutboxMessage.objects.count(),
        LogEntry.objects.count(),
    )


def said(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def token_of(response) -> str:
    return re.search(r'name="token" value="([0-9a-f-]{36})"', response.content.decode()).group(1)


def repayment_form(client: Client, loan_id: int, amount, on=None) -> dict:
    """A rendered repayment form's fields, filled in."""
    response = client.get(page(loan_id, "repayment"))
    assert response.status_code == 200
    return {"amount": str(amount), "date": (on or timezone.localdate()).isoformat(), "token": token_of(response)}


def test_disbursing_from_the_admin_page_disburses_like_the_service(signed_in, approved_loan):
    today = timezone.localdate()
    form = signed_in.get(page(approved_loan.id, "disburse"))

    response = signed_in.post(page(approved_loan.id, "disburse"), {"date": today.isoformat()}, follow=True)

    assert f'value="{today.isoformat()}"' in form.content.decode()  # the date defaults to today
    assert response.redirect_chain == [(f"/admin/loans/loan/{approved_loan.id}/change/", 302)]
    loan = Loan.objects.get(pk=approved_loan.id)
    assert (loan.status, loan.disbursed_on, loan.disbursed_by) == ("DISBURSED", today, ADMIN_ID)
    [tx] = loan.transactions.all()
    assert (tx.kind, tx.amount, tx.created_by) == ("disbursement", loan.principal, ADMIN_ID)
    assert OutboxMessage.objects.filter(name="loan.disbursed").count() == 1
    assert (loan.history.latest().history_user_id, loan.history.latest().history_change_reason) == (1, "disbursed")
    assert said(response) == [
        f"Loan #{loan.id} disbursed on {today}: 200,000.00 paid out; "
        f"next instalment {loan.next_due_amount:,.2f} due on {loan.next_due_date}."
    ]


@pytest.mark.parametrize(
    ("days", "error"), [(1, "future"), (-1, "before the approval")], ids=["future", "pre-approval"]
)
def test_a_disbursement_date_the_service_refuses_is_a_form_error(signed_in, approved_loan, days, error):
    before = written(approved_loan.id)
    day = timezone.localdate() + timedelta(days=days)

    response = signed_in.post(page(approved_loan.id, "disburse"), {"date": day.isoformat()})

    assert response.status_code == 200
    assert error in response.context["form"].errors["date"][0]
    assert written(approved_loan.id) == before


def test_cancelling_after_the_disbursement_window_cancels_with_the_note(signed_in, approved_loan, settings):
    opened = timezone.now() - timedelta(days=settings.LOAN_DISBURSE_WITHIN_DAYS)
    Loan.objects.filter(pk=approved_loan.id).update(decided_at=opened)

    response = signed_in.post(page(approved_loan.id, "cancel"), {"note": "customer withdrew"}, follow=True)

    loan = Loan.objects.get(pk=approved_loan.id)
    assert (loan.status, loan.servicing_note, loan.cancelled_on) == (
        "CANCELLED",
        "customer withdrew",
        timezone.localdate(),
    )
    assert OutboxMessage.objects.filter(name="loan.cancelled").count() == 1
    assert said(response) == [f"Loan #{loan.id} cancelled."]


def test_cancelling_inside_the_disbursement_window_says_until_when_and_writes_nothing(signed_in, approved_loan):
    before = written(approved_loan.id)

    response = signed_in.post(page(approved_loan.id, "cancel"), {"note": "too early"})

    assert response.status_code == 200
    assert "can be disbursed until" in response.context["form"].non_field_errors()[0]
    assert written(approved_loan.id) == before


def test_a_repayment_from_the_admin_page_is_recorded_like_the_api(signed_in):
    loan = disbursed(months=12, on=months_ago(1))

    response = signed_in.post(page(loan.id, "repayment"), repayment_form(signed_in, loan.id, "871.97"), follow=True)

    assert said(response) == ["Repayment of 871.97 recorded; 9,591.62 still owed."]
    [tx] = LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment")
    assert (tx.amount, tx.on, tx.created_by) == (Decimal("871.97"), timezone.localdate(), ADMIN_ID)
    assert Loan.objects.get(pk=loan.id).total_outstanding == Decimal("9591.62")
    assert OutboxMessage.objects.filter(name="repayment.received").count() == 1


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"amount": "payoff+0.01"}, "amount", "payoff amount"),
        ({"date": 1}, "date", "future"),
        ({"date": -40}, "date", "before the disbursement"),
        ({"amount": "abc"}, "amount", "Enter a number."),
        ({"amount": "10.001"}, "amount", "2 decimal places"),
        ({"amount": "0"}, "amount", "greater than or equal to 0.01"),
        ({"token": ""}, "token", "open it again"),
    ],
    ids=["above-payoff", "future-date", "before-disbursement", "not-a-number", "three-decimals", "zero", "no-token"],
)
def test_a_repayment_the_rules_refuse_shows_the_error_and_writes_nothing(signed_in, change, field, error):
    loan = disbursed(months=12, on=timezone.localdate() - timedelta(days=30))
    payoff = selectors.payoff_of(loan, timezone.localdate()).total
    data = repayment_form(signed_in, loan.id, "100.00")
    if change.get("amount") == "payoff+0.01":
        change = {"amount": str(payoff + Decimal("0.01"))}
    if "date" in change:
        change = {"date": (timezone.localdate() + timedelta(days=change["date"])).isoformat()}
    before = written(loan.id)

    response = signed_in.post(page(loan.id, "repayment"), {**data, **change})

    assert response.status_code == 200
    assert error in response.context["form"].errors[field][0]
    assert written(loan.id) == before


def test_a_double_submitted_repayment_form_records_one_repayment(signed_in):
    loan = disbursed(months=12, on=months_ago(2))
    data = repayment_form(signed_in, loan.id, "500.00")

    first = signed_in.post(page(loan.id, "repayment"), data, follow=True)
    second = signed_in.post(page(loan.id, "repayment"), data, follow=True)

    assert said(first) == [
        f"Repayment of 500.00 recorded; {Loan.objects.get(pk=loan.id).total_outstanding:,.2f} still owed."
    ]
    assert said(second) == ["This form was already posted: nothing more was recorded."]
    assert LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment").count() == 1
    assert OutboxMessage.objects.filter(name="repayment.received").count() == 1


def test_a_refused_form_may_be_corrected_and_posted_again(signed_in):
    loan = disbursed(months=12, on=months_ago(2))
    data = repayment_form(signed_in, loan.id, "500.00", on=timezone.localdate() + timedelta(days=1))

    refused = signed_in.post(page(loan.id, "repayment"), data)
    corrected = signed_in.post(page(loan.id, "repayment"), {**data, "date": timezone.localdate().isoformat()})

    assert (refused.status_code, corrected.status_code) == (200, 302)
    assert LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment").count() == 1


def test_each_rendering_of_the_form_is_its_own_repayment(signed_in):
    loan = disbursed(months=12, on=months_ago(2))
    forms = [repayment_form(signed_in, loan.id, "100.00"), repayment_form(signed_in, loan.id, "100.00")]

    for data in forms:
        assert signed_in.post(page(loan.id, "repayment"), data).status_code == 302

    assert LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_form_posted_twice_at_once_records_one_repayment(user_service_server):
    loan = disbursed(principal="100000.00", months=24, on=months_ago(3))
    # Two browsers of the same admin (two sessions): the token, not the session, makes the form one-time.
    clients = [sign_in(Client(), user_service_server), sign_in(Client(), user_service_server)]
    data = repayment_form(clients[0], loan.id, "2500.00")

    codes = run_together(2, lambda i: clients[i].post(page(loan.id, "repayment"), data).status_code)

    assert codes == [302, 302]
    assert LoanTransaction.objects.filter(loan_id=loan.id, kind="repayment").count() == 1
    assert OutboxMessage.objects.filter(name="repayment.received").count() == 1


def test_writing_off_a_loan_long_past_due_records_what_was_lost(signed_in):
    loan = disbursed(months=12, on=timezone.localdate() - timedelta(days=150))
    payoff = selectors.payoff_of(loan, timezone.localdate()).total

    response = signed_in.post(page(loan.id, "write-off"), {"note": "customer unreachable"}, follow=True)

    loan.refresh_from_db()
    assert (loan.status, loan.servicing_note, loan.total_outstanding) == ("WRITTEN_OFF", "customer unreachable", 0)
    assert loan.transactions.get(kind="write_off").amount == payoff
    assert OutboxMessage.objects.filter(name="loan.written_off").count() == 1
    assert said(response) == [f"Loan #{loan.id} written off: {payoff:,.2f} lost."]


@pytest.mark.parametrize(
    ("note", "field", "error"),
    [("gone", None, "0 days past due; a write-off needs 90"), ("", "note", "This field is required.")],
    ids=["not-late-enough", "no-note"],
)
def test_a_write_off_the_rules_refuse_shows_the_error_and_writes_nothing(signed_in, note, field, error):
    loan = disbursed(months=12, on=timezone.localdate() - timedelta(days=20))
    before = written(loan.id)

    response = signed_in.post(page(loan.id, "write-off"), {"note": note})

    assert response.status_code == 200
    errors = response.context["form"].errors.get(field or "__all__")
    assert error in errors[0]
    assert written(loan.id) == before


def test_reversing_a_repayment_from_the_admin_page_reopens_what_it_paid(signed_in):
    loan = disbursed(months=12, on=months_ago(2))
    owed = loan.total_outstanding
    repayment, _ = servicing.record_repayment(loan_id=loan.id, user_id=ADMIN_ID, amount=Decimal("871.97"))
    reverse = page(loan.id, f"transactions/{repayment.id}/reverse")

    shown = signed_in.get(reverse)
    response = signed_in.post(reverse, {"note": "cheque bounced"}, follow=True)

    assert shown.status_code == 200
    repayment.refresh_from_db()
    reversal = LoanTransaction.objects.get(reversal_of=repayment)
    assert repayment.is_reversed
    assert (reversal.note, reversal.created_by) == ("cheque bounced", ADMIN_ID)
    assert Loan.objects.get(pk=loan.id).total_outstanding == owed
    assert OutboxMessage.objects.filter(name="repayment.reversed").count() == 1
    assert said(response) == [f"Repayment of 871.97 on {repayment.on} reversed; {owed:,.2f} now owed."]


def test_a_reversal_the_rules_refuse_shows_the_error_and_writes_nothing(signed_in):
    loan = disbursed(months=12, on=months_ago(2))
    repayment, _ = servicing.record_repayment(loan_id=loan.id, user_id=ADMIN_ID, amount=Decimal("100.00"))
    servicing.reverse_transaction(loan_id=loan.id, transaction_id=repayment.id, admin_id=ADMIN_ID, note="first")
    disbursement = loan.transactions.get(kind="disbursement")
    before = written(loan.id)

    again = signed_in.post(page(loan.id, f"transactions/{repayment.id}/reverse"), {"note": "twice"})
    payout = signed_in.post(page(loan.id, f"transactions/{disbursement.id}/reverse"), {"note": "no"})

    assert again.context["form"].non_field_errors() == ["This transaction has already been reversed."]
    assert payout.context["form"].non_field_errors() == ["Only repayments and fees can be reversed."]
    assert written(loan.id) == before
