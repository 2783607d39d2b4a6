"""Every write of loan_service: one function per use case, one transaction, events through the outbox."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from common import events
from common.errors import InvalidInput
from common.outbox import publisher as outbox
from loans import schedule
from loans.customers import ensure_customer
from loans.errors import LoanAlreadyDecided, LoanNotEditable, LoanNotFound
from loans.models import (
    SLICE_MONEY,
    Loan,
    LoanStatusCount,
    PortfolioSlice,
    add_to_portfolio,
    slice_key_and_values,
)

DECISIONS = {Loan.Status.APPROVED: events.LoanApproved, Loan.Status.REJECTED: events.LoanRejected}


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


def _event(payload_class: type[events.LoanEvent], loan: Loan) -> events.LoanEvent:
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


def edit_loan(*, loan_id: int, agent_id: int, principal: Decimal | None = None, months: int | None = None) -> Loan:
    """Change the terms of a NEW loan; the rate, EMI and totals are recomputed. Never overwrites a decision."""
    with transaction.atomic():
        loan = _locked(loan_id)
        if loan.is_decided:
            raise LoanNotEditable()
        new_principal = loan.principal if principal is None else principal
        new_months = loan.months if months is None else months
        check_terms(principal=new_principal, months=new_months)
        loan.set_terms(principal=new_principal, months=new_months, interest=rate_for(new_principal))
        loan.record_change(by=agent_id, change="updated")
        loan.save()
        outbox.publish(_event(events.LoanUpdated, loan))
    return loan


def decide_loan(*, loan_id: int, admin_id: int, status: str, note: str = "") -> Loan:
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
        rows = list(PortfolioSlice.objects.order_by("id"))
        sums: dict[tuple, list] = {}
        for row in rows:
            folded = sums.setdefault(
                (row.agent_id, row.status, row.unpaid_since), [0] + [Decimal(0)] * len(SLICE_MONEY)
            )
            folded[0] += row.loans
            for index, name in enumerate(SLICE_MONEY, start=1):
                folded[index] += getattr(row, name)
        PortfolioSlice.objects.filter(id__lte=rows[-1].id if rows else 0).delete()
        add_to_portfolio([(key, folded[0], tuple(folded[1:])) for key, folded in sums.items()])


def rebuild_portfolio() -> bool:
    """Recompute the kept slices from the loan rows (loans locked against writes meanwhile, as the
    recount of the status counts); True when they were right."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(Loan._meta.db_table)} IN SHARE MODE")
        compact_portfolio()
        counted: dict[tuple, list] = {}
        for loan in Loan.objects.only(*SLICE_FIELDS).order_by().iterator(chunk_size=2000):
            key, money = slice_key_and_values(loan)
            sums = counted.setdefault(key, [0, *(Decimal(0) for _ in SLICE_MONEY)])
            sums[0] += 1
            for index, value in enumerate(money, start=1):
                sums[index] += value
        kept = {
            (row.agent_id, row.status, row.unpaid_since): [row.loans, *(getattr(row, name) for name in SLICE_MONEY)]
            for row in PortfolioSlice.objects.all()
        }
        if kept == counted:
            return True
        PortfolioSlice.objects.all().delete()
        add_to_portfolio([(key, sums[0], tuple(sums[1:])) for key, sums in counted.items()])
    return False


SLICE_FIELDS = ["agent_id", "status", "unpaid_since", "principal", "disbursed_on", "outstanding_principal"]
SLICE_FIELDS += ["outstanding_interest", "outstanding_fees"]
