"""The daily job: late fees, overdue notices, reminders and the arrears of every disbursed loan, as of a day.

Set-based: the book is walked in batches of loan ids, and each batch is a handful of
statements whatever its size (lock the batch's loans, read its unpaid instalments, write what
changed in bulk, insert the fees and events in bulk), never queries per loan. Each reminder,
overdue notice and fee is claimed by a date column of its instalment inside the batch's
transaction, so running the job twice for a day, or two runs at once, does each only once.

The batch's loans are locked first (`SELECT ... FOR UPDATE`, in id order): a repayment holds its
loan's lock while it replays, so the job never reads or writes a loan in the middle of one, and
every statement after the lock sees the repayments committed before it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common import events
from common.outbox.models import OutboxMessage
from common.outbox.publisher import envelope_row
from loans import ledger, reports
from loans.models import (
    Instalment,
    Loan,
    LoanTransaction,
    PortfolioDay,
    add_to_portfolio,
)
from loans.schedule import ZERO
from loans.selectors import movements_of, state_of, terms_of
from loans.services import compact_portfolio
from loans.servicing import servicing_fields, store_state

logger = logging.getLogger("lms.loans.daily")
ARREARS_FIELDS = ["days_past_due", "next_due_date", "next_due_amount"]


@dataclass
class DailyRun:
    """What one run did."""

    as_of: date
    loans: int = 0  # the disbursed loans that could have work (see due_for_work); the others are skipped
    fees: int = 0
    fee_amount: Decimal = ZERO
    overdue_notices: int = 0
    reminders: int = 0
    arrears_updated: int = 0
    replayed: int = 0
    seconds: float = 0.0
    batches: int = field(default=0, repr=False)

    def __str__(self) -> str:
        return (
            f"as of {self.as_of}: {self.loans} loans with work in {self.batches} batches, {self.fees} late fees "
            f"({self.fee_amount:.2f}), {self.overdue_notices} overdue notices, {self.reminders} reminders, "
            f"{self.arrears_updated} arrears updated, {self.replayed} replayed, {self.seconds:.2f} s"
        )


def run_daily(*, as_of: date, batch_size: int | None = None) -> DailyRun:
    """Bring every disbursed loan up to `as_of`: fees, notices, reminders, days past due, next payment."""
    started = time.perf_counter()
    batch_size = batch_size or settings.LOAN_DAILY_JOB_BATCH
    run = DailyRun(as_of=as_of)
    ids = due_for_work(as_of).order_by("id").values_list("id", flat=True)
    last = 0
    while True:
        # Keyset batches: the next `batch_size` disbursed loan ids after the last one done.
        batch = list(ids.filter(id__gt=last)[:batch_size])
        if not batch:
            break
        with transaction.atomic():
            _run_batch(batch, as_of, run)
        last = batch[-1]
        run.batches += 1
    compact_portfolio()  # the day's differences in the kept portfolio slices, folded
    _snapshot(as_of)
    run.seconds = time.perf_counter() - started
    logger.info("daily job done", extra={"as_of": as_of.isoformat(), "summary": str(run)})
    return run


def _snapshot(as_of: date) -> None:
    """The day's portfolio report, kept for the dashboard's PAR over time (a rerun replaces it)."""
    figures = reports.portfolio(as_of=as_of, period_start=as_of.replace(day=1))
    PortfolioDay.objects.update_or_create(day=as_of, defaults={"figures": figures, "computed_at": timezone.now()})


def due_for_work(as_of: date):
    """The disbursed loans the job can have something to do for on `as_of`.

    A loan not late (days past due 0) whose next due date is after the reminder horizon has no
    fee, notice or reminder to come, and its arrears as of any day up to that due date are what
    is stored (the oldest unpaid instalment is that one): it is skipped. That is most of a
    healthy book on most days.
    """
    horizon = as_of + timedelta(days=settings.LOAN_REMINDER_DAYS_BEFORE)
    return Loan.objects.filter(status=Loan.Status.DISBURSED).filter(
        Q(days_past_due__gt=0) | Q(next_due_date__isnull=True) | Q(next_due_date__lte=horizon)
    )


def _run_batch(batch: list[int], as_of: date, run: DailyRun) -> None:
    # Locked, then read again: a repayment may have changed a loan since its id was picked.
    loans = {loan.id: loan for loan in Loan.objects.select_for_update().filter(id__in=batch).order_by("id")}
    loans = {loan_id: loan for loan_id, loan in loans.items() if loan.status == Loan.Status.DISBURSED}
    run.loans += len(loans)
    _charge_late_fees(loans, as_of, run)
    unpaid = _unpaid_instalments(loans)
    _update_arrears(loans, unpaid, as_of, run)
    _notify_overdue(loans, unpaid, as_of, run)
    _remind(loans, unpaid, as_of, run)


def _unpaid_instalments(loans: dict[int, Loan]) -> dict[int, list[Instalment]]:
    by_loan: dict[int, list[Instalment]] = defaultdict(list)
    rows = Instalment.objects.filter(loan_id__in=list(loans), paid_off_on__isnull=True).order_by("loan_id", "number")
    for row in rows:
        by_loan[row.loan_id].append(row)
    return by_loan


def _charge_late_fees(loans: dict[int, Loan], as_of: date, run: DailyRun) -> None:
    """One fee per instalment still unpaid `LOAN_LATE_FEE_GRACE_DAYS` after its due date, dated that day.

    A loan with a transaction dated after the fee is replayed (the fee changes how that
    transaction was allocated); for all the others the fee only adds to what is owed, in bulk.
    """
    grace = timedelta(days=settings.LOAN_LATE_FEE_GRACE_DAYS)
    late = list(
        Instalment.objects.filter(
            loan_id__in=list(loans),
            paid_off_on__isnull=True,
            late_fee_charged_on__isnull=True,
            due_date__lte=as_of - grace,
        ).order_by("loan_id", "number")
    )
    if not late:
        return
    later = _loans_with_transactions_after(late, grace)
    fees, replay = [], set()
    charged: dict[int, Decimal] = defaultdict(lambda: ZERO)  # bulk fees so far, by loan
    for row in late:
        fee_on = row.due_date + grace
        overdue = row.unpaid - (row.fee_due - row.fee_paid)
        if row.loan_id in later:
            overdue = _overdue_on(loans[row.loan_id], row.number, fee_on)
        amount = settings.LOAN_LATE_FEE.on(overdue)
        row.late_fee_charged_on = as_of
        if amount <= ZERO:
            continue
        fees.append(
            LoanTransaction(
                loan_id=row.loan_id,
                kind=LoanTransaction.Kind.FEE,
                amount=amount,
                on=fee_on,
                instalment_number=row.number,
                note=f"Late fee on instalment {row.number}.",
                fee_portion=amount,
            )
        )
        if row.loan_id in later:
            replay.add(row.loan_id)
        else:
            row.fee_due += amount
            charged[row.loan_id] += amount
            _fee_balance_after(fees[-1], loans[row.loan_id], charged[row.loan_id])
    Instalment.objects.bulk_update(late, ["late_fee_charged_on", "fee_due"])
    LoanTransaction.objects.bulk_create(fees)
    _add_fees_to_balances(loans, charged)
    for loan_id in sorted(replay):
        loan = loans[loan_id]
        transactions = list(loan.transactions.all())
        store_state(loan, transactions, state_of(loan, transactions), today=as_of)
        loan.skip_history_when_saving = True  # like the bulk path: the fee is in the ledger, not a change of terms
        loan.save()
        run.replayed += 1
    run.fees += len(fees)
    run.fee_amount += sum((fee.amount for fee in fees), ZERO)


def _fee_balance_after(fee: LoanTransaction, loan: Loan, charged: Decimal) -> None:
    """A bulk fee's balance after it: the loan's (nothing is dated after it) plus the fees charged so far.

    The fee is on an unpaid instalment, so the oldest unpaid one stays the oldest."""
    fee.principal_after, fee.interest_after = loan.outstanding_principal, loan.outstanding_interest
    fee.fees_after = loan.outstanding_fees + charged
    fee.unpaid_since = loan.unpaid_since


def _loans_with_transactions_after(late: list[Instalment], grace: timedelta) -> set[int]:
    """The loans of `late` with a repayment (or other applied movement) dated after their earliest fee."""
    first_fee_on: dict[int, date] = {}
    for row in late:
        first_fee_on.setdefault(row.loan_id, row.due_date + grace)
    condition = Q()
    for loan_id, fee_on in first_fee_on.items():
        condition |= Q(loan_id=loan_id, on__gt=fee_on)
    applied = LoanTransaction.objects.filter(condition, reversed_at__isnull=True).exclude(
        kind__in=[LoanTransaction.Kind.DISBURSEMENT, LoanTransaction.Kind.REVERSAL]
    )
    return set(applied.values_list("loan_id", flat=True).distinct())


def _overdue_on(loan: Loan, number: int, on: date) -> Decimal:
    """Instalment `number`'s unpaid principal and interest at the end of `on`, from the ledger."""
    state = ledger.state_on(terms_of(loan), movements_of(list(loan.transactions.all())), on)
    line = next((line for line in state.lines if line.number == number), None)
    return line.principal_unpaid + line.interest_unpaid if line else ZERO


def _add_fees_to_balances(loans: dict[int, Loan], charged: dict[int, Decimal]) -> None:
    """The bulk fees (by loan) added to the loans' balances and to the kept portfolio slices."""
    changed = [loans[loan_id] for loan_id in charged]
    for loan in changed:
        loan.outstanding_fees += charged[loan.pk]
        loan.total_outstanding += charged[loan.pk]
    Loan.objects.bulk_update(changed, ["outstanding_fees", "total_outstanding"])
    add_to_portfolio([change for loan in changed for change in loan.take_slice_changes()])


def _update_arrears(loans: dict[int, Loan], unpaid: dict[int, list[Instalment]], as_of: date, run: DailyRun) -> None:
    """Days past due and the next payment of each loan, by ledger.arrears (the replay's own rule)."""
    changed = []
    for loan_id, loan in loans.items():
        figures = ledger.arrears((row.due_date, row.unpaid) for row in unpaid.get(loan_id, []))(as_of)
        values = (figures.days_past_due, figures.next_due_date, figures.next_due_amount)
        if (loan.days_past_due, loan.next_due_date, loan.next_due_amount) != values:
            loan.days_past_due, loan.next_due_date, loan.next_due_amount = values
            changed.append(loan)
    Loan.objects.bulk_update(changed, ARREARS_FIELDS)
    run.arrears_updated += len(changed)


def _notify_overdue(loans: dict[int, Loan], unpaid: dict[int, list[Instalment]], as_of: date, run: DailyRun) -> None:
    """loan.overdue once per instalment, from the day after it fell due."""
    rows = [row for rows in unpaid.values() for row in rows if row.due_date < as_of and row.overdue_notified_on is None]
    payloads = []
    for row in rows:
        row.overdue_notified_on = as_of
        loan = loans[row.loan_id]
        payloads.append(
            events.LoanOverdue(
                **servicing_fields(loan),
                instalment=row.number,
                due_date=row.due_date,
                amount_overdue=row.unpaid,
                days_past_due=(as_of - row.due_date).days,
            )
        )
    Instalment.objects.bulk_update(rows, ["overdue_notified_on"])
    OutboxMessage.objects.bulk_create([envelope_row(payload) for payload in payloads])
    run.overdue_notices += len(payloads)


def _remind(loans: dict[int, Loan], unpaid: dict[int, list[Instalment]], as_of: date, run: DailyRun) -> None:
    """instalment.due once per instalment, `LOAN_REMINDER_DAYS_BEFORE` days (or fewer) before it falls due."""
    horizon = as_of + timedelta(days=settings.LOAN_REMINDER_DAYS_BEFORE)
    rows = [
        row
        for rows in unpaid.values()
        for row in rows
        if as_of < row.due_date <= horizon and row.reminder_sent_on is None
    ]
    payloads = []
    for row in rows:
        row.reminder_sent_on = as_of
        payloads.append(
            events.InstalmentDue(
                **servicing_fields(loans[row.loan_id]),
                instalment=row.number,
                due_date=row.due_date,
                amount_due=row.unpaid,
            )
        )
    Instalment.objects.bulk_update(rows, ["reminder_sent_on"])
    OutboxMessage.objects.bulk_create([envelope_row(payload) for payload in payloads])
    run.reminders += len(payloads)
