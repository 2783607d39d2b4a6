"""The daily job: late fees once per late instalment, overdue notices, reminders, arrears; idempotent."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from common.outbox.models import OutboxMessage
from loans import schedule
from loans.daily import run_daily
from loans.fees import parse_late_fee
from loans.models import Instalment, Loan, LoanTransaction
from loans.selectors import state_of
from tests.conftest import disbursed, months_ago, repay

pytestmark = pytest.mark.django_db


def fees(loan_id: int) -> list[tuple]:
    rows = LoanTransaction.objects.filter(loan_id=loan_id, kind="fee").order_by("instalment_number")
    return list(rows.values_list("instalment_number", "amount", "on"))


def events(name: str) -> list[dict]:
    return [row.message["payload"] for row in OutboxMessage.objects.filter(name=name).order_by("created_at")]


def assert_stored_state_is_the_replay(loan: Loan) -> None:
    """What the job wrote in bulk equals what a full replay of the transactions gives."""
    loan.refresh_from_db()
    state = state_of(loan)
    stored = list(loan.instalments.order_by("number").values_list("fee_due", "fee_paid", "principal_paid"))
    assert stored == [(line.fee_due, line.fee_paid, line.principal_paid) for line in state.lines]
    assert (loan.outstanding_fees, loan.total_outstanding) == (state.outstanding_fees, state.total_outstanding)


def test_a_late_instalment_gets_one_fee_after_the_grace_days(settings):
    settings.LOAN_LATE_FEE = parse_late_fee("25.00")
    loan = disbursed(months=12, on=months_ago(3))
    first_due = schedule.add_months(loan.disbursed_on, 1)
    grace = settings.LOAN_LATE_FEE_GRACE_DAYS

    run_daily(as_of=first_due + timedelta(days=grace - 1))
    assert fees(loan.id) == []

    run_daily(as_of=first_due + timedelta(days=grace))
    run_daily(as_of=first_due + timedelta(days=grace))  # the same day again
    run_daily(as_of=first_due + timedelta(days=grace + 3))  # and later days

    assert fees(loan.id) == [(1, Decimal("25.00"), first_due + timedelta(days=grace))]
    assert_stored_state_is_the_replay(loan)
    assert Loan.objects.get(pk=loan.id).outstanding_fees == Decimal("25.00")


def test_a_percentage_fee_is_a_share_of_what_is_overdue(settings):
    settings.LOAN_LATE_FEE = parse_late_fee("2%")
    loan = disbursed(months=12, on=months_ago(2))
    first = loan.instalments.get(number=1)

    run_daily(as_of=timezone.localdate())

    overdue = first.principal_due + first.interest_due
    assert fees(loan.id)[0][1] == schedule.to_cents(overdue * Decimal("0.02"))


def test_paid_late_every_month_means_exactly_one_fee_per_late_instalment(agent_api, settings):
    settings.LOAN_LATE_FEE = parse_late_fee("25.00")
    loan = disbursed(months=12, on=months_ago(12))
    plan = schedule.repayment(loan.principal, loan.interest, 12, start=loan.disbursed_on).instalments
    late_ones = {2, 5, 9}

    for row in plan:
        paid_on = row.due_date
        if row.month in late_ones:
            paid_on = row.due_date + timedelta(days=10)
            run_daily(as_of=paid_on)  # the job ran every day; the fee fell due on day 5
        amount = row.payment + (Decimal("25.00") if row.month in late_ones else 0)
        assert repay(agent_api, loan.id, amount, min(paid_on, timezone.localdate())).status_code == 201
    run_daily(as_of=timezone.localdate())

    assert [number for number, _, _ in fees(loan.id)] == sorted(late_ones)
    loan.refresh_from_db()
    assert loan.status == "CLOSED", (loan.total_outstanding, loan.outstanding_fees)
    assert loan.instalments.filter(paid_off_on__isnull=True).count() == 0


def test_a_fee_dated_before_a_later_repayment_is_replayed_into_it(agent_api, settings):
    settings.LOAN_LATE_FEE = parse_late_fee("25.00")
    loan = disbursed(months=12, on=months_ago(3))
    first_due = schedule.add_months(loan.disbursed_on, 1)
    repay(agent_api, loan.id, "100.00", first_due + timedelta(days=8))  # a partial payment after the fee date

    run_daily(as_of=first_due + timedelta(days=9))

    [(_number, _amount, on)] = fees(loan.id)
    assert on == first_due + timedelta(days=5)
    payment = LoanTransaction.objects.get(loan_id=loan.id, kind="repayment")
    assert payment.fee_portion == Decimal("25.00")  # the fee came first, so the payment paid it first
    assert_stored_state_is_the_replay(loan)


def test_overdue_notices_once_per_instalment_from_the_day_after(settings):
    loan = disbursed(months=12, on=months_ago(3))
    due = schedule.add_months(loan.disbursed_on, 1)

    run_daily(as_of=due)
    assert events("loan.overdue") == []

    run_daily(as_of=due + timedelta(days=1))
    run_daily(as_of=due + timedelta(days=1))
    run_daily(as_of=due + timedelta(days=2))

    [notice] = events("loan.overdue")
    assert (notice["instalment"], notice["due_date"], notice["days_past_due"]) == (1, due.isoformat(), 1)
    assert Decimal(notice["amount_overdue"]) == loan.emi


def test_reminders_go_out_days_before_each_due_date_once(settings):
    settings.LOAN_REMINDER_DAYS_BEFORE = 3
    loan = disbursed(months=12, on=timezone.localdate() - timedelta(days=20))
    due = schedule.add_months(loan.disbursed_on, 1)

    run_daily(as_of=due - timedelta(days=4))
    assert events("instalment.due") == []
    run_daily(as_of=due - timedelta(days=3))
    run_daily(as_of=due - timedelta(days=2))

    [reminder] = events("instalment.due")
    assert (reminder["instalment"], reminder["due_date"], reminder["amount_due"]) == (1, due.isoformat(), str(loan.emi))


def test_no_reminder_for_an_instalment_already_paid(agent_api):
    loan = disbursed(months=12, on=timezone.localdate() - timedelta(days=20))
    due = schedule.add_months(loan.disbursed_on, 1)
    repay(agent_api, loan.id, loan.emi, timezone.localdate())

    run_daily(as_of=due - timedelta(days=3))

    assert events("instalment.due") == []


def test_the_job_keeps_days_past_due_and_the_next_payment():
    loan = disbursed(months=12, on=months_ago(3))
    first_due = schedule.add_months(loan.disbursed_on, 1)
    day = first_due + timedelta(days=40)
    assert day <= timezone.localdate()

    run_daily(as_of=day)

    loan.refresh_from_db()
    assert loan.days_past_due == 40
    second_due = schedule.add_months(loan.disbursed_on, 2)
    third_due = schedule.add_months(loan.disbursed_on, 3)
    expected_next = second_due if second_due >= day else third_due
    assert loan.next_due_date == expected_next
    owed = Instalment.objects.filter(loan=loan, due_date__lte=expected_next)
    assert loan.next_due_amount == sum((row.unpaid for row in owed), Decimal(0))
    assert state_of(loan).arrears(day).days_past_due == 40  # the replay's own rule agrees


def test_loans_not_disbursed_are_left_alone(new_loan):
    run = run_daily(as_of=timezone.localdate())
    assert run.loans == 0
    assert not OutboxMessage.objects.filter(name__in=["loan.overdue", "instalment.due"]).exists()


def test_batches_cover_the_whole_book():
    loans = [disbursed(months=6, on=months_ago(2)) for _ in range(5)]

    run = run_daily(as_of=timezone.localdate(), batch_size=2)

    assert (run.loans, run.batches) == (5, 3)
    assert all(Loan.objects.get(pk=loan.id).days_past_due > 0 for loan in loans)


def test_the_command_runs_the_job_for_a_day(capsys):
    loan = disbursed(months=12, on=months_ago(3))
    call_command("run_daily", "--as-of", timezone.localdate().isoformat())
    out = capsys.readouterr().out
    assert "1 loans with work" in out
    assert Loan.objects.get(pk=loan.id).days_past_due > 0


def test_the_command_refuses_a_future_day():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("run_daily", "--as-of", (timezone.localdate() + timedelta(days=1)).isoformat())
