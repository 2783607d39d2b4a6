"""Every write of a loan after its approval: disbursement, repayments, reversals, cancellation, write-off.

Each use case locks the loan row (like decisions), records its transaction, replays the whole
ledger (ledger.replay, pure) and stores the result: the instalments, each transaction's
allocation and the loan's balances are never updated any other way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common import events
from common.errors import InvalidInput
from common.outbox import publisher as outbox
from loans import ledger, schedule, services
from loans.errors import (
    DisbursementWindowOpen,
    LoanNotActive,
    LoanNotCancellable,
    LoanNotDisbursable,
    LoanNotFound,
    LoanNotInArrears,
    TransactionAlreadyReversed,
    TransactionNotFound,
    TransactionNotReversible,
)
from loans.models import Instalment, Loan, LoanTransaction
from loans.selectors import movements_of, state_of, terms_of
from loans.services import count_status_changes

INSTALMENT_MONEY = [
    "due_date",
    "principal_due",
    "interest_due",
    "fee_due",
    "principal_paid",
    "interest_paid",
    "fee_paid",
    "paid_off_on",
]
PORTIONS = ["principal_portion", "interest_portion", "fee_portion", "overpaid_portion"]
BALANCE_AFTER = ["principal_after", "interest_after", "fees_after", "unpaid_since"]
Kind = LoanTransaction.Kind


def _locked(loan_id: int) -> Loan:
    try:
        return Loan.objects.select_for_update().get(pk=loan_id)
    except Loan.DoesNotExist:
        raise LoanNotFound() from None


def _check_date(on: date, *, not_before: date, what: str, field: str = "date") -> None:
    if on > timezone.localdate():
        raise InvalidInput.on(field, "Must not be in the future.")
    if on < not_before:
        raise InvalidInput.on(field, f"Must not be before the {what} ({not_before.isoformat()}).")


def servicing_fields(loan: Loan) -> dict:
    """The fields every servicing event carries, from the loan as stored now."""
    return {
        "loan_id": loan.pk,
        "customer_id": loan.customer_id,
        "agent_id": loan.agent_id,
        "total_outstanding": loan.total_outstanding,
        "next_due_date": loan.next_due_date,
        "next_due_amount": loan.next_due_amount,
    }


def store_state(loan: Loan, transactions: Sequence[LoanTransaction], state: ledger.LedgerState, *, today: date) -> str:
    """Write a replay's result: changed instalments and allocations, the loan's balances and status.

    Returns the loan's status before, so the caller can tell a transition (the kept counts are
    updated here). The loan row must be locked by the caller; it is saved by the caller.
    """
    _store_instalments(loan, state)
    _store_allocations(transactions, state)
    before = loan.status
    loan.outstanding_principal = state.outstanding_principal
    loan.outstanding_interest = state.outstanding_interest
    loan.outstanding_fees = state.outstanding_fees
    loan.total_outstanding = state.total_outstanding
    loan.overpaid = state.overpaid
    loan.unpaid_since = state.balance.unpaid_since
    arrears = state.arrears(today)
    loan.days_past_due, loan.next_due_date, loan.next_due_amount = (
        arrears.days_past_due,
        arrears.next_due_date,
        arrears.next_due_amount,
    )
    loan.closed_on = state.closed_on
    if state.is_written_off:
        loan.status, loan.written_off_on = Loan.Status.WRITTEN_OFF, state.written_off_on
        parts = state.written_off
        loan.written_off_principal, loan.written_off_interest, loan.written_off_fees = (
            parts.principal,
            parts.interest,
            parts.fee,
        )
    else:
        loan.status = Loan.Status.CLOSED if state.closed_on else Loan.Status.DISBURSED
    if loan.status != before:
        count_status_changes({before: -1, loan.status: 1})
    return before


def _store_instalments(loan: Loan, state: ledger.LedgerState) -> None:
    stored = {row.number: row for row in loan.instalments.all()}
    changed, created = [], []
    for line in state.lines:
        values = {name: getattr(line, name) for name in INSTALMENT_MONEY}
        row = stored.pop(line.number, None)
        if row is None:
            created.append(Instalment(loan=loan, number=line.number, **values))
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            changed.append(row)
    if stored:  # a prepayment shortened the term
        Instalment.objects.filter(pk__in=[row.pk for row in stored.values()]).delete()
    if changed:
        Instalment.objects.bulk_update(changed, INSTALMENT_MONEY)
    if created:
        Instalment.objects.bulk_create(created)


def balance_after(tx: LoanTransaction, state: ledger.LedgerState) -> tuple:
    """The BALANCE_AFTER values of `tx` in `state`: empty off the ledger (a reversal record, a reversed one)."""
    if tx.kind == Kind.DISBURSEMENT:
        balance = state.opening
    elif tx.kind == Kind.REVERSAL or tx.id not in state.balances:
        return (None, None, None, None)
    else:
        balance = state.balances[tx.id]
    return (balance.principal, balance.interest, balance.fee, balance.unpaid_since)


def _store_allocations(transactions: Sequence[LoanTransaction], state: ledger.LedgerState) -> None:
    changed = []
    for tx in transactions:
        values = dict(zip(BALANCE_AFTER, balance_after(tx, state), strict=True))
        if tx.kind not in (Kind.DISBURSEMENT, Kind.REVERSAL):
            part = state.allocations.get(tx.id, ledger.Allocation())  # reversed: allocated nothing
            values |= zip(PORTIONS, (part.principal, part.interest, part.fee, part.overpaid), strict=True)
        if any(getattr(tx, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(tx, name, value)
            changed.append(tx)
    if changed:
        LoanTransaction.objects.bulk_update(changed, PORTIONS + BALANCE_AFTER)


def _announce_closure(loan: Loan, before: str, transactions: Sequence[LoanTransaction]) -> None:
    if loan.status == Loan.Status.CLOSED and before != Loan.Status.CLOSED:
        paid = sum((tx.amount for tx in transactions if tx.kind == Kind.REPAYMENT and not tx.is_reversed), Decimal(0))
        outbox.publish(events.LoanClosed(**servicing_fields(loan), closed_on=loan.closed_on, total_paid=paid))


def disburse_loan(*, loan_id: int, admin_id: int, on: date | None = None, request=None) -> Loan:
    """Pay out an APPROVED loan; its schedule is fixed from the disbursement date (default today)."""
    on = on or timezone.localdate()
    with transaction.atomic():
        loan = _locked(loan_id)
        if loan.status != Loan.Status.APPROVED:
            raise LoanNotDisbursable()
        _check_date(on, not_before=timezone.localdate(loan.decided_at), what="approval")
        loan.disbursed_on, loan.disbursed_by = on, admin_id
        loan.start_date, loan.end_date = on, schedule.add_months(on, loan.months)
        disbursement = LoanTransaction.objects.create(
            loan=loan, kind=Kind.DISBURSEMENT, amount=loan.principal, on=on, created_by=admin_id
        )
        store_state(loan, [disbursement], state_of(loan, [disbursement]), today=timezone.localdate())
        loan.record_change(by=admin_id, change="disbursed")
        loan.save()
        outbox.publish(
            events.LoanDisbursed(
                **servicing_fields(loan),
                principal=loan.principal,
                months=loan.months,
                emi=loan.emi,
                disbursed_on=on,
                end_date=loan.end_date,
            )
        )
        services.audit_loan(
            services.AUDIT_DISBURSED, loan, actor_id=admin_id, request=request, amount=loan.principal, on=on
        )
    return loan


def cancel_loan(*, loan_id: int, admin_id: int, note: str = "", request=None) -> Loan:
    """Cancel an APPROVED loan never disbursed within settings.LOAN_DISBURSE_WITHIN_DAYS of its approval."""
    today = timezone.localdate()
    with transaction.atomic():
        loan = _locked(loan_id)
        if loan.status != Loan.Status.APPROVED:
            raise LoanNotCancellable()
        approved_on = timezone.localdate(loan.decided_at)
        if (today - approved_on).days < settings.LOAN_DISBURSE_WITHIN_DAYS:
            opens = approved_on.toordinal() + settings.LOAN_DISBURSE_WITHIN_DAYS
            raise DisbursementWindowOpen(
                f"This loan can be disbursed until {date.fromordinal(opens - 1).isoformat()}; "
                f"it can be cancelled from {date.fromordinal(opens).isoformat()}."
            )
        loan.status, loan.cancelled_on, loan.servicing_note = Loan.Status.CANCELLED, today, note
        loan.record_change(by=admin_id, change="cancelled")
        loan.save()
        count_status_changes({Loan.Status.APPROVED: -1, Loan.Status.CANCELLED: 1})
        outbox.publish(events.LoanCancelled(**servicing_fields(loan), note=note))
        services.audit_loan(services.AUDIT_CANCELLED, loan, actor_id=admin_id, request=request, note=note)
    return loan


def record_repayment(
    *, loan_id: int, user_id: int, amount: Decimal, on: date | None = None
) -> tuple[LoanTransaction, Loan]:
    """Take a repayment of a DISBURSED loan; more than the payoff on its date is refused (400)."""
    on = on or timezone.localdate()
    with transaction.atomic():
        loan = _locked(loan_id)
        if loan.status != Loan.Status.DISBURSED:
            raise LoanNotActive()
        _check_date(on, not_before=loan.disbursed_on, what="disbursement")
        transactions = list(loan.transactions.all())
        before = state_of(loan, transactions)
        repayment = LoanTransaction.objects.create(
            loan=loan, kind=Kind.REPAYMENT, amount=amount, on=on, created_by=user_id
        )
        transactions.append(repayment)
        after = state_of(loan, transactions)
        if after.overpaid > before.overpaid:
            payoff = ledger.state_on(terms_of(loan), movements_of(transactions[:-1]), on).payoff(on)
            raise InvalidInput.on("amount", f"Must not be more than the payoff amount, {payoff:.2f} on {on}.")
        status_before = store_state(loan, transactions, after, today=timezone.localdate())
        loan.record_change(by=user_id, change="repayment")
        loan.save()
        part = after.allocations[repayment.id]
        outbox.publish(
            events.RepaymentReceived(
                **servicing_fields(loan),
                transaction_id=repayment.id,
                amount=amount,
                paid_on=on,
                principal=part.principal,
                interest=part.interest,
                fees=part.fee,
            )
        )
        _announce_closure(loan, status_before, transactions)
    return repayment, loan


def reverse_transaction(
    *, loan_id: int, transaction_id: int, admin_id: int, note: str, request=None
) -> tuple[LoanTransaction, Loan]:
    """Reverse a repayment or a fee; later transactions are re-applied in order and the customer told."""
    with transaction.atomic():
        loan = _locked(loan_id)
        if loan.status not in (Loan.Status.DISBURSED, Loan.Status.CLOSED):
            raise LoanNotActive("Only a DISBURSED or CLOSED loan's transactions can be reversed.")
        transactions = list(loan.transactions.all())
        original = next((tx for tx in transactions if tx.id == transaction_id), None)
        if original is None:
            raise TransactionNotFound()
        if original.kind not in ledger.REVERSIBLE:
            raise TransactionNotReversible()
        if original.is_reversed:
            raise TransactionAlreadyReversed()
        original.reversed_at = timezone.now()
        original.save(update_fields=["reversed_at"])
        reversal = LoanTransaction.objects.create(
            loan=loan,
            kind=Kind.REVERSAL,
            amount=original.amount,
            on=timezone.localdate(),
            reversal_of=original,
            created_by=admin_id,
            note=note,
        )
        transactions.append(reversal)
        status_before = store_state(loan, transactions, state_of(loan, transactions), today=timezone.localdate())
        loan.record_change(by=admin_id, change="reversal")
        loan.save()
        outbox.publish(
            events.RepaymentReversed(
                **servicing_fields(loan),
                transaction_id=original.id,
                kind=original.kind,
                amount=original.amount,
                on=original.on,
                note=note,
            )
        )
        services.audit_loan(
            services.AUDIT_REVERSED,
            loan,
            actor_id=admin_id,
            request=request,
            transaction_id=original.id,
            kind=original.kind,
            amount=original.amount,
            on=original.on,
            note=note,
        )
        _announce_closure(loan, status_before, transactions)
    return reversal, loan


def write_off_loan(*, loan_id: int, admin_id: int, note: str, request=None) -> Loan:
    """Write off a DISBURSED loan at least settings.LOAN_WRITE_OFF_MIN_DPD days past due; records what was lost."""
    if not note.strip():
        raise InvalidInput.on("note", "Say why the loan is written off.")
    today = timezone.localdate()
    with transaction.atomic():
        loan = _locked(loan_id)
        if loan.status != Loan.Status.DISBURSED:
            raise LoanNotActive()
        transactions = list(loan.transactions.all())
        state = state_of(loan, transactions)
        late = state.arrears(today).days_past_due
        if late < settings.LOAN_WRITE_OFF_MIN_DPD:
            raise LoanNotInArrears(
                f"This loan is {late} days past due; a write-off needs {settings.LOAN_WRITE_OFF_MIN_DPD}."
            )
        lost = state.settlement(today)
        write_off = LoanTransaction.objects.create(
            loan=loan, kind=Kind.WRITE_OFF, amount=lost.total, on=today, created_by=admin_id, note=note
        )
        transactions.append(write_off)
        store_state(loan, transactions, state_of(loan, transactions), today=today)
        loan.servicing_note = note
        loan.record_change(by=admin_id, change="written_off")
        loan.save()
        outbox.publish(
            events.LoanWrittenOff(
                **servicing_fields(loan),
                written_off_on=today,
                principal=lost.principal,
                interest=lost.interest,
                fees=lost.fee,
                days_past_due=late,
                note=note,
            )
        )
        services.audit_loan(
            services.AUDIT_WRITTEN_OFF,
            loan,
            actor_id=admin_id,
            request=request,
            amount=lost.total,
            principal=lost.principal,
            interest=lost.interest,
            fees=lost.fee,
            days_past_due=late,
            note=note,
        )
    return loan
