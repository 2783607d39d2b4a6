"""Every write of loan_service: one function per use case, one transaction, events through the outbox."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from common import audit, events
from common.errors import InvalidInput
from common.outbox import publisher as outbox
from loans import schedule
from loans.customers import ensure_customer
from loans.errors import LoanAlreadyDecided, LoanNotEditable, LoanNotFound, LoanNotYours
from loans.models import (
    SLICE_MONEY,
    Loan,
    LoanStatusCount,
    PortfolioSlice,
    add_to_portfolio,
    slice_key_and_values,
)

DECISIONS = {Loan.Status.APPROVED: events.LoanApproved, Loan.Status.REJECTED: events.LoanRejected}

# The audit trail's events of loan_service (common.audit; docs/DESIGN.md, "Audit trail"): its money
# decisions, each recorded in the transaction of the change. Refusals change nothing and are not recorded.
AUDIT_APPROVED = "loan.approved"
AUDIT_REJECTED = "loan.rejected"
AUDIT_TERMS_CHANGED = "loan.terms_changed"
AUDIT_DISBURSED = "loan.disbursed"
AUDIT_CANCELLED = "loan.cancelled"
AUDIT_WRITTEN_OFF = "loan.written_off"
AUDIT_REVERSED = "loan.transaction_reversed"


def audit_loan(event: str, loan: Loan, *, actor_id: int, request=None, **details) -> None:
    """One audit row of `event` on `loan` by `actor_id`, in the caller's transaction."""
    audit.record(event, request=request, actor_id=actor_id, subject_type="loan", subject_id=loan.pk, details=details)


def rate_for(principal: Decimal) -> Decimal:
    """The annual rate the lender's policy (settings.LOAN_RATE_TIERS) gives this principal."""
    return schedule.rate_for(principal, settings.LOAN_RATE_TIERS)


def check_terms(*, principal: Decimal, months: int) -> None:
    """Raise InvalidInput naming each field outside the lending limits."""
    details = {}
    if not settings.LOAN_MIN_PRINCIPAL <= principal <= settings.LOAN_MAX_PRINCIPAL:
        details["principal"] = [
            f"Must be between {settings.LOAN_MIN_PRINCIPAL:,.2f} and {settings.LOAN_MAX_PRINCIPAL:,.2f}."
        ]
    if not 1 <= months <= settings.LOAN_MAX_MONTHS:
        details["months"] = [f"Must be between 1 and {settings.LOAN_MAX_MONTHS}."]
    if details:
        raise InvalidInput(details=details)


def price_of(principal: Decimal, months: int) -> tuple[Decimal, schedule.Repayment]:
    """The rate and repayment today's policy gives these terms, without checking them against the lending limits."""
    rate = rate_for(principal)
    return rate, schedule.repayment(principal, rate, months)


def quote(*, principal: Decimal, months: int) -> tuple[Decimal, schedule.Repayment]:
    """The rate and repayment a loan of these terms would get today; saves nothing."""
    check_terms(principal=principal, months=months)
    return price_of(principal, months)


def _event(payload_class: type[events.LoanEvent], loan: Loan, **fields) -> events.LoanEvent:
    return payload_class(
        loan_id=loan.pk,
        customer_id=loan.customer_id,
        agent_id=loan.agent_id,
        principal=loan.principal,
        interest=loan.interest,
        months=loan.months,
        emi=loan.emi,
        amount=loan.amount,
        total_interest=loan.total_interest,
        status=loan.status,
        decided_by=loan.decided_by,
        decision_note=loan.decision_note,
        **fields,
    )


def count_status_changes(changes: dict[str, int]) -> None:
    """Add each delta to its status's count, in the caller's transaction.

    Rows are locked in status order, so a decision (two rows) and a creation
    (one) never deadlock. A positive delta is an upsert (a missing row is
    created, not skipped); a negative one updates the row its loan was counted in.
    """
    table = connection.ops.quote_name(LoanStatusCount._meta.db_table)
    with connection.cursor() as cursor:
        for status, delta in sorted(changes.items()):
            if delta > 0:
                cursor.execute(
                    f"INSERT INTO {table} (status, count) VALUES (%s, %s) "  # noqa: S608 - the table name is ours
                    f"ON CONFLICT (status) DO UPDATE SET count = {table}.count + EXCLUDED.count",
                    [status, delta],
                )
            else:
                LoanStatusCount.objects.filter(status=status).update(count=F("count") + delta)


def create_loan(*, agent_id: int, customer_id: int, principal: Decimal, months: int) -> Loan:
    """An approved agent requests a loan for a customer; user_service must confirm the customer first.

    The customer check happens before the transaction: if user_service is
    down the caller gets a 503 and nothing is written.
    """
    check_terms(principal=principal, months=months)
    ensure_customer(customer_id)
    loan = Loan(customer_id=customer_id, agent_id=agent_id)
    loan.set_terms(principal=principal, months=months, interest=rate_for(principal))
    loan.record_change(by=agent_id, change="created")
    with transaction.atomic():
        loan.save()
        outbox.publish(_event(events.LoanCreated, loan))
        count_status_changes({Loan.Status.NEW: 1})
    return loan


def _locked(loan_id: int) -> Loan:
    try:
        return Loan.objects.select_for_update().get(pk=loan_id)
    except Loan.DoesNotExist:
        raise LoanNotFound() from None


def edit_loan(
    *,
    loan_id: int,
    editor_id: int,
    by_admin: bool = False,
    principal: Decimal | None = None,
    months: int | None = None,
    request=None,
) -> Loan:
    """Change the terms of a NEW loan; the rate, EMI and totals are recomputed. Never overwrites a decision.

    Only the agent who requested the loan (`editor_id` its `agent_id`) or an admin (`by_admin`) may
    (LoanNotYours otherwise: approved agents see every loan, so a 403 tells nothing a 404 would hide).
    The customer is told the old and the new terms (loan.terms_changed); an edit that changes
    nothing saves, records and tells nothing.
    """
    with transaction.atomic():
        loan = _locked(loan_id)
        if not by_admin and loan.agent_id != editor_id:
            raise LoanNotYours()
        if loan.is_decided:
            raise LoanNotEditable()
        new_principal = loan.principal if principal is None else principal
        new_months = loan.months if months is None else months
        check_terms(principal=new_principal, months=new_months)
        old = {
            "old_principal": loan.principal,
            "old_interest": loan.interest,
            "old_months": loan.months,
            "old_emi": loan.emi,
            "old_amount": loan.amount,
        }
        loan.set_terms(principal=new_principal, months=new_months, interest=rate_for(new_principal))
        if (loan.principal, loan.interest, loan.months, loan.emi, loan.amount) == tuple(old.values()):
            return loan
        loan.record_change(by=editor_id, change="updated")
        loan.save()
        outbox.publish(_event(events.LoanTermsChanged, loan, changed_by=editor_id, **old))
        new = {"principal": loan.principal, "interest": loan.interest, "months": loan.months, "emi": loan.emi}
        audit_loan(AUDIT_TERMS_CHANGED, loan, actor_id=editor_id, request=request, by_admin=by_admin, **old, **new)
    return loan


def decide_loan(*, loan_id: int, admin_id: int, status: str, note: str = "", request=None) -> Loan:
    """Approve or reject a NEW loan. Exactly one of concurrent decisions wins; the others get 409."""
    if status not in DECISIONS:
        raise InvalidInput.on("status", "Must be APPROVED or REJECTED.")
    with transaction.atomic():
        loan = _locked(loan_id)
        if loan.is_decided:
            raise LoanAlreadyDecided()
        now = timezone.now()
        if status == Loan.Status.APPROVED:
            loan.approve(by=admin_id, at=now, on=now.date())
        else:
            loan.reject(by=admin_id, at=now, note=note)
        loan.record_change(by=admin_id, change=status.lower())
        loan.save()
        outbox.publish(_event(DECISIONS[status], loan))
        count_status_changes({Loan.Status.NEW: -1, status: 1})
        event = AUDIT_APPROVED if status == Loan.Status.APPROVED else AUDIT_REJECTED
        audit_loan(event, loan, actor_id=admin_id, request=request, principal=loan.principal, note=note)
    return loan


def recount_loan_statuses() -> dict[str, tuple[int, int]]:
    """Set every kept status count to the number of loan rows; returns {status: (kept before, counted)}.

    Writes outside the services (a data fix in psql, a restore) leave LoanStatusCount
    behind. The loans table is locked against writes for the recount: every service
    writes its loan row before its count, so a change in flight either committed
    before the recount or waits for it, and none of them is counted twice or lost.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(Loan._meta.db_table)} IN SHARE MODE")
        rows = Loan.objects.order_by().values("status").annotate(rows=Count("id"))
        counted = dict(rows.values_list("status", "rows"))
        kept = dict(LoanStatusCount.objects.select_for_update().values_list("status", "count"))
        statuses = sorted(set(Loan.Status.values) | set(counted) | set(kept))
        for status in statuses:
            LoanStatusCount.objects.update_or_create(status=status, defaults={"count": counted.get(status, 0)})
    return {status: (kept.get(status, 0), counted.get(status, 0)) for status in statuses}


SLICE_TABLE = PortfolioSlice._meta.db_table
SLICE_KEY = "agent_id, status, unpaid_since"
SLICE_SUMS = "SUM(loans), " + ", ".join(f"SUM({name})" for name in SLICE_MONEY)
SLICE_COLUMNS = f"{SLICE_KEY}, loans, {', '.join(SLICE_MONEY)}"
SLICE_NOT_EMPTY = "SUM(loans) <> 0 OR " + " OR ".join(f"SUM({name}) <> 0" for name in SLICE_MONEY)


SLICE_FIELDS = ["agent_id", "status", "unpaid_since", "principal", "disbursed_on", "outstanding_principal"]
SLICE_FIELDS += ["outstanding_interest", "outstanding_fees"]


def _folded(changes) -> dict[tuple, tuple]:
    """(key, loans, money) changes summed by key, empty keys dropped: {key: (loans, *money)}."""
    sums: dict[tuple, list] = {}
    for key, loans, money in changes:
        folded = sums.setdefault(key, [0] + [Decimal(0)] * len(SLICE_MONEY))
        folded[0] += loans
        for index, value in enumerate(money, start=1):
            folded[index] += value
    return {key: tuple(values) for key, values in sums.items() if any(values)}


def _slice_rows() -> list[tuple[tuple, int, tuple]]:
    return [
        ((row.agent_id, row.status, row.unpaid_since), row.loans, tuple(getattr(row, name) for name in SLICE_MONEY))
        for row in PortfolioSlice.objects.order_by("id")
    ]


def _replace_slices(folded: dict[tuple, tuple], *, up_to_id: int | None = None) -> None:
    rows = PortfolioSlice.objects.all() if up_to_id is None else PortfolioSlice.objects.filter(id__lte=up_to_id)
    rows.delete()
    add_to_portfolio([(key, values[0], values[1:]) for key, values in folded.items()])


def compact_portfolio() -> None:
    """Fold the kept PortfolioSlice differences into one row per key (empty keys dropped).

    PostgreSQL does it in one statement, so a difference committed meanwhile is either folded or
    left as it is, never lost. SQLite has one writer at a time, so the steps cannot interleave; it
    keeps decimals as floats, so the sums are made in Python, where they are exact.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"WITH gone AS (DELETE FROM {SLICE_TABLE} RETURNING *) "  # noqa: S608 - constant names
                    f"INSERT INTO {SLICE_TABLE} ({SLICE_COLUMNS}) SELECT {SLICE_KEY}, {SLICE_SUMS} FROM gone "
                    f"GROUP BY {SLICE_KEY} HAVING {SLICE_NOT_EMPTY}"
                )
            return
        last = PortfolioSlice.objects.order_by("-id").values_list("id", flat=True).first() or 0
        _replace_slices(_folded(_slice_rows()), up_to_id=last)


def rebuild_portfolio() -> bool:
    """Recompute the kept slices from the loan rows (loans locked against writes meanwhile, as the
    recount of the status counts); True when they were right."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(Loan._meta.db_table)} IN SHARE MODE")
        loans = Loan.objects.only(*SLICE_FIELDS).order_by().iterator(chunk_size=2000)
        counted = _folded((key, 1, money) for key, money in map(slice_key_and_values, loans))
        if _folded(_slice_rows()) == counted:
            return True
        _replace_slices(counted)
    return False
