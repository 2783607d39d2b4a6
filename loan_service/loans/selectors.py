"""Every read of loan_service that is more than a .get(): lists, visibility rules, history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.db.models import QuerySet

from common.errors import InvalidInput
from common.permissions import ADMIN, CUSTOMER, is_approved_agent
from loans import ledger
from loans.errors import LoanNotActive, LoanNotFound
from loans.models import LOAN_FIELDS, Loan, LoanTransaction

# Fields a history entry reports: the ids (the loan's, its customer's and agent's) and the row's
# own timestamps are not "changes".
# Nor are the arrears, which move with the calendar and are not kept in the history.
NOT_CHANGES = {"id", "customer_id", "agent_id", "created_at", "updated_at", "next_due_date", "next_due_amount"}
HISTORY_FIELDS = [name for name in LOAN_FIELDS if name not in NOT_CHANGES | {"days_past_due", "unpaid_since"}]


def list_loans(
    *,
    status: str | None = None,
    customer_id: int | None = None,
    agent_id: int | None = None,
    ordering: str = "",
    overdue: bool | None = None,
    min_dpd: int | None = None,
) -> QuerySet[Loan]:
    """All loans for admins and approved agents, filtered; newest first unless `ordering` says otherwise.

    `overdue` (true: some instalment is late, false: none is) and `min_dpd` filter on the days past
    due kept by the replays and the daily job (at most a day old).
    """
    loans = Loan.objects.all()
    if status:
        loans = loans.filter(status=status)
    if customer_id is not None:
        loans = loans.filter(customer_id=customer_id)
    if agent_id is not None:
        loans = loans.filter(agent_id=agent_id)
    if overdue is not None:
        loans = loans.filter(days_past_due__gt=0) if overdue else loans.filter(days_past_due=0)
    if min_dpd:
        loans = loans.filter(days_past_due__gte=min_dpd)
    if ordering:
        loans = loans.order_by(ordering, "-id" if ordering.startswith("-") else "id")
    if customer_id is None and agent_id is None and overdue is None and not min_dpd:
        # Filtered by status alone: the total is the kept count, not a scan of the index.
        loans = loans.counted_by_status([status] if status else Loan.Status.values)
    return loans


def list_loans_for_customer(
    *, customer_id: int, status: str | None = None, overdue: bool | None = None, min_dpd: int | None = None
) -> QuerySet[Loan]:
    """A customer's own loans, newest first."""
    return list_loans(customer_id=customer_id, status=status, overdue=overdue, min_dpd=min_dpd)


def get_loan_for(user, loan_id: int) -> Loan:
    """The loan if `user` may see it: admins and approved agents see all, a customer only their own.

    Anything else is LoanNotFound, so a customer cannot learn that another's loan exists.
    """
    loan = Loan.objects.filter(pk=loan_id).first()
    if loan is None:
        raise LoanNotFound()
    if user.role == ADMIN or is_approved_agent(user):
        return loan
    if user.role == CUSTOMER and loan.customer_id == user.id:
        return loan
    raise LoanNotFound()


def history_of(loan: Loan) -> list[dict]:
    """Every change of the loan, oldest first: what kind, who, the status after it and the changed fields.

    `fields` maps a name to its [old, new] values as stored (Decimal, date, datetime...);
    the API writes them exactly as it writes the loan object.
    """
    entries = []
    previous = None
    for record in loan.history.order_by("history_date", "history_id"):
        fields = {}
        for name in HISTORY_FIELDS:
            old = getattr(previous, name) if previous is not None else None
            new = getattr(record, name)
            if previous is None and new in (None, ""):
                continue
            if old != new:
                fields[name] = [old, new]
        entries.append(
            {
                "changed_at": record.history_date,
                "changed_by": record.history_user_id,
                "change": record.history_change_reason or {"+": "created", "~": "updated"}.get(record.history_type),
                "status": record.status,
                "fields": fields,
            }
        )
        previous = record
    return entries


def transactions_of(loan: Loan, *, kind: str | None = None) -> QuerySet[LoanTransaction]:
    """A loan's transactions in value-date order (then as recorded), reversed ones included."""
    rows = loan.transactions.select_related("reversal_of").order_by("on", "id")
    return rows.filter(kind=kind) if kind else rows


def payoff_of(loan: Loan, on: date) -> ledger.Allocation:
    """What closes `loan` on `on`, by part; only a DISBURSED loan has one, and only from its last transaction on."""
    if loan.status != Loan.Status.DISBURSED:
        raise LoanNotActive("Only a DISBURSED loan has a payoff amount.")
    transactions = list(loan.transactions.all())
    latest = max(tx.on for tx in transactions)
    if on < latest:
        raise InvalidInput.on("date", f"Must not be before the loan's last transaction ({latest.isoformat()}).")
    return state_of(loan, transactions).settlement(on)


def terms_of(loan: Loan) -> ledger.Terms:
    """The ledger's view of a disbursed loan's terms."""
    return ledger.Terms(loan.principal, loan.interest, loan.months, loan.emi, loan.disbursed_on)


def movements_of(transactions: Sequence[LoanTransaction]) -> list[ledger.Movement]:
    """The ledger's view of a loan's transactions."""
    return [
        ledger.Movement(tx.id, tx.kind, tx.amount, tx.on, tx.instalment_number, tx.is_reversed) for tx in transactions
    ]


def state_of(loan: Loan, transactions: Sequence[LoanTransaction] | None = None) -> ledger.LedgerState:
    """The replayed ledger of a disbursed loan (its transactions read unless given)."""
    if transactions is None:
        transactions = list(loan.transactions.all())
    return ledger.replay(terms_of(loan), movements_of(transactions))
