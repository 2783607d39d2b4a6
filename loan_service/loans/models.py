"""A loan and the invariants one row must always keep; its full history through simple-history."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from loans import ledger, schedule
from loans.schedule import ZERO

STATUSES = ["NEW", "APPROVED", "REJECTED", "CANCELLED", "DISBURSED", "CLOSED", "WRITTEN_OFF"]
SERVICED = ["DISBURSED", "CLOSED", "WRITTEN_OFF"]  # paid out: has a schedule, transactions and balances


class LoanStatusCount(models.Model):
    """How many loans have each status, kept by the services in the transaction of each change.

    Counting 30,000 APPROVED loans for a page of 20 took longer than the whole rest of
    the request; one row per status makes the admin list's `count` a primary-key read.
    """

    status = models.CharField(max_length=16, primary_key=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(count__gte=0), name="loan_status_count_not_negative")]

    def __str__(self) -> str:
        return f"{self.status}: {self.count}"


# A slice's unpaid_since when nothing is owed (a unique key cannot hold NULL as one value).
NEVER_LATE = date(9999, 12, 31)
SLICE_MONEY = ["principal", "disbursed_principal", "outstanding_principal", "outstanding_interest", "outstanding_fees"]


class PortfolioSlice(models.Model):
    """Kept sums of the loan table by agent, status and unpaid_since: today's portfolio report reads
    these few thousand rows instead of every loan (loans/reports.py).

    Append-only: each save of a loan that moves its figures adds the difference (the old slice
    minus, the new slice plus), so concurrent writers never wait on one another here. The daily
    job (and `recount_loans`) folds the rows into one per key (`compact_portfolio`). Days past
    due come from unpaid_since on the day of the report, so the slices do not age.
    """

    agent_id = models.BigIntegerField()
    status = models.CharField(max_length=16)
    unpaid_since = models.DateField()
    loans = models.BigIntegerField(default=0)
    principal = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)
    disbursed_principal = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)
    outstanding_principal = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)
    outstanding_interest = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)
    outstanding_fees = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)

    class Meta:
        indexes = [models.Index(fields=["agent_id"], name="portfolio_slice_agent")]

    def __str__(self) -> str:
        return f"agent {self.agent_id} {self.status} unpaid since {self.unpaid_since}: {self.loans} loans"


class PortfolioDay(models.Model):
    """The portfolio report of a day as the daily job computed it then (the dashboard's PAR over time).

    A snapshot: a later backdated repayment or reversal changes the report of that day
    (GET /api/loan/reports/portfolio?as_of=), not what was reported.
    """

    day = models.DateField(unique=True)
    figures = models.JSONField(encoder=DjangoJSONEncoder)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"portfolio of {self.day}"


def slice_key_and_values(loan) -> tuple[tuple, tuple]:
    """The PortfolioSlice key of a loan and what it adds to it."""
    key = (loan.agent_id, loan.status, loan.unpaid_since or NEVER_LATE)
    disbursed = loan.principal if loan.disbursed_on else ZERO
    money = (loan.principal, disbursed, loan.outstanding_principal, loan.outstanding_interest, loan.outstanding_fees)
    return key, tuple(Decimal(value) for value in money)


def add_to_portfolio(changes: list[tuple[tuple, int, tuple]]) -> None:
    """Append (key, loans, money) differences to the kept slices."""
    rows = [
        PortfolioSlice(
            agent_id=agent, status=status, unpaid_since=since, loans=loans, **dict(zip(SLICE_MONEY, money, strict=True))
        )
        for (agent, status, since), loans, money in changes
        if loans or any(money)
    ]
    PortfolioSlice.objects.bulk_create(rows)


class LoanQuerySet(models.QuerySet):
    _counted_statuses: tuple[str, ...] | None = None

    def counted_by_status(self, statuses) -> LoanQuerySet:
        """This queryset, whose count() is the sum of LoanStatusCount over `statuses`.

        Only for a queryset filtered by status alone: any later filter (a clone) counts rows again.
        """
        clone = self._chain()
        clone._counted_statuses = tuple(statuses)
        return clone

    def count(self) -> int:
        if self._counted_statuses is None:
            return super().count()
        tallies = LoanStatusCount.objects.filter(status__in=self._counted_statuses)
        return tallies.aggregate(total=models.Sum("count"))["total"] or 0


class Loan(models.Model):
    class Status(models.TextChoices):
        NEW = "NEW"
        APPROVED = "APPROVED"
        REJECTED = "REJECTED"
        CANCELLED = "CANCELLED"
        DISBURSED = "DISBURSED"
        CLOSED = "CLOSED"
        WRITTEN_OFF = "WRITTEN_OFF"

    # Ids from user_service: no foreign keys across services.
    customer_id = models.BigIntegerField()
    agent_id = models.BigIntegerField()
    principal = models.DecimalField(max_digits=14, decimal_places=2)
    interest = models.DecimalField(max_digits=5, decimal_places=2, help_text="Nominal annual rate, percent.")
    months = models.PositiveSmallIntegerField()
    emi = models.DecimalField(max_digits=14, decimal_places=2)
    amount = models.DecimalField(max_digits=16, decimal_places=2, help_text="Total payable.")
    total_interest = models.DecimalField(max_digits=16, decimal_places=2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    decided_by = models.BigIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True, default="")
    # Servicing: set at disbursement, then the stored result of ledger.replay() over the transactions.
    disbursed_on = models.DateField(null=True, blank=True)
    disbursed_by = models.BigIntegerField(null=True, blank=True)
    outstanding_principal = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    outstanding_interest = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    outstanding_fees = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    total_outstanding = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    overpaid = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO, help_text="Paid beyond the payoff.")
    # As of the last replay or daily job (at most a day old): what keeps the loan current, how late it is.
    next_due_date = models.DateField(null=True, blank=True)
    next_due_amount = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    days_past_due = models.PositiveIntegerField(default=0)
    # As of the last replay (exact): the due date of the oldest instalment not fully paid; the
    # reports count days past due from it on any day (ledger.Balance).
    unpaid_since = models.DateField(null=True, blank=True)
    closed_on = models.DateField(null=True, blank=True)
    cancelled_on = models.DateField(null=True, blank=True)
    written_off_on = models.DateField(null=True, blank=True)
    written_off_principal = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    written_off_interest = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    written_off_fees = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    servicing_note = models.CharField(
        max_length=500, blank=True, default="", help_text="Why it was cancelled or written off."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LoanQuerySet.as_manager()

    # Who made each change is the user id from the token (there is no user table here).
    history = HistoricalRecords(
        history_user_id_field=models.BigIntegerField(null=True, blank=True),
        history_user_getter=lambda historical: historical.history_user_id,
        history_user_setter=lambda historical, user_id: setattr(historical, "history_user_id", user_id),
        # Arrears move with the calendar (the daily job): they are not changes of the loan.
        excluded_fields=["updated_at", "next_due_date", "next_due_amount", "days_past_due", "unpaid_since"],
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="loan_newest"),
            models.Index(fields=["status", "-created_at", "-id"], name="loan_status_newest"),
            models.Index(fields=["customer_id", "-created_at", "-id"], name="loan_customer_newest"),
            models.Index(fields=["agent_id", "-created_at", "-id"], name="loan_agent_newest"),
            # ?ordering=principal / -principal: with the id, as the list orders (a cursor page is one index range).
            models.Index(fields=["principal", "id"], name="loan_principal_id"),
            # The portfolio report's "disbursed in the period".
            models.Index(fields=["disbursed_on"], name="loan_disbursed_on", condition=Q(disbursed_on__isnull=False)),
            # ?overdue=true&min_dpd=N: the few late loans, most late first.
            models.Index(
                fields=["-days_past_due", "-created_at", "-id"],
                name="loan_overdue",
                condition=Q(days_past_due__gt=0),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=STATUSES), name="loan_status_valid"),
            models.CheckConstraint(condition=Q(principal__gt=0), name="loan_principal_positive"),
            models.CheckConstraint(condition=Q(months__gt=0), name="loan_months_positive"),
            models.CheckConstraint(
                condition=(Q(status="NEW", decided_by__isnull=True, decided_at__isnull=True))
                | (~Q(status="NEW") & Q(decided_by__isnull=False, decided_at__isnull=False)),
                name="loan_decision_iff_decided",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["NEW", "REJECTED"], start_date__isnull=True, end_date__isnull=True)
                | (~Q(status__in=["NEW", "REJECTED"]) & Q(start_date__isnull=False, end_date__isnull=False)),
                name="loan_dates_iff_approved",
            ),
            models.CheckConstraint(
                condition=Q(status__in=SERVICED, disbursed_on__isnull=False)
                | (~Q(status__in=SERVICED) & Q(disbursed_on__isnull=True)),
                name="loan_disbursed_iff_serviced",
            ),
            # Not also "total = the sum of the three": SQLite keeps decimals as floats, where sums are inexact.
            models.CheckConstraint(
                condition=Q(outstanding_principal__gte=0, outstanding_interest__gte=0, outstanding_fees__gte=0)
                & Q(total_outstanding__gte=0),
                name="loan_outstanding_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Loan #{self.pk} ({self.status})"

    def save(self, *args, **kwargs):
        """Save, and add the change of its figures to the kept PortfolioSlice rows (same transaction)."""
        before = getattr(self, "_slice", None)
        if before is None and not self._state.adding:
            raise RuntimeError("a loan read with only some fields cannot be saved (the portfolio would drift)")
        with transaction.atomic():
            super().save(*args, **kwargs)
            add_to_portfolio(self.take_slice_changes())

    def take_slice_changes(self) -> list[tuple[tuple, int, tuple]]:
        """The PortfolioSlice differences since the loan was read or last counted, and count them as taken.

        For a write that goes around save() (a bulk update): append them with add_to_portfolio."""
        before, after = getattr(self, "_slice", None), slice_key_and_values(self)
        self._slice = after
        if after == before:
            return []
        changes = [(after[0], 1, after[1])]
        if before is not None:
            changes.append((before[0], -1, tuple(-value for value in before[1])))
        return changes

    @classmethod
    def from_db(cls, db, field_names, values):
        loan = super().from_db(db, field_names, values)
        loan._slice = slice_key_and_values(loan) if len(values) == len(cls._meta.concrete_fields) else None
        return loan

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self._slice = slice_key_and_values(self)

    def record_change(self, *, by: int, change: str) -> None:
        """Who makes the next save and what kind of change it is, for the history row."""
        self._history_user = by
        self._change_reason = change

    @property
    def is_decided(self) -> bool:
        return self.status != self.Status.NEW

    def set_terms(self, *, principal: Decimal, months: int, interest: Decimal) -> None:
        """Principal, term and rate, with the EMI and totals that follow from them."""
        cost = schedule.repayment(principal, interest, months)
        self.principal = schedule.to_cents(Decimal(principal))
        self.months = months
        self.interest = interest
        self.emi, self.amount, self.total_interest = cost.emi, cost.amount, cost.total_interest

    def repayment(self) -> schedule.Repayment:
        return schedule.repayment(self.principal, self.interest, self.months, start=self.start_date)

    def approve(self, *, by: int, at, on: date) -> None:
        self.status = self.Status.APPROVED
        self.decided_by, self.decided_at = by, at
        self.start_date, self.end_date = on, schedule.add_months(on, self.months)

    def reject(self, *, by: int, at, note: str) -> None:
        self.status = self.Status.REJECTED
        self.decided_by, self.decided_at, self.decision_note = by, at, note

    @property
    def is_serviced(self) -> bool:
        return self.status in SERVICED


# Every stored field of a loan, in table order (no foreign keys or db_column: names are the columns).
LOAN_FIELDS = [field.name for field in Loan._meta.concrete_fields]


class Instalment(models.Model):
    """One row of a disbursed loan's schedule: what is due and paid, by part (ledger.replay's result).

    The three *_on dates are the daily job's own bookkeeping, so that each reminder, overdue
    notice and late fee happens once per instalment however often the job runs.
    """

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="instalments")
    number = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    principal_due = models.DecimalField(max_digits=16, decimal_places=2)
    interest_due = models.DecimalField(max_digits=16, decimal_places=2)
    fee_due = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    principal_paid = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    interest_paid = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    fee_paid = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    paid_off_on = models.DateField(null=True, blank=True)
    reminder_sent_on = models.DateField(null=True, blank=True)
    overdue_notified_on = models.DateField(null=True, blank=True)
    late_fee_charged_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["loan_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "number"], name="instalment_number_unique"),
            models.CheckConstraint(
                condition=Q(principal_paid__gte=0, interest_paid__gte=0, fee_paid__gte=0)
                & Q(principal_paid__lte=F("principal_due"), interest_paid__lte=F("interest_due"))
                & Q(fee_paid__lte=F("fee_due")),
                name="instalment_paid_within_due",
            ),
        ]
        indexes = [
            # The daily job's scans and the per-loan arrears: unpaid instalments only.
            models.Index(fields=["due_date"], name="instalment_unpaid_due", condition=Q(paid_off_on__isnull=True)),
            models.Index(
                fields=["loan", "due_date"], name="instalment_unpaid_loan", condition=Q(paid_off_on__isnull=True)
            ),
            # The collections report: what fell due in a period.
            models.Index(fields=["due_date"], name="instalment_due"),
        ]

    def __str__(self) -> str:
        return f"Loan #{self.loan_id} instalment {self.number}"

    @property
    def unpaid(self) -> Decimal:
        return (
            self.principal_due
            - self.principal_paid
            + self.interest_due
            - self.interest_paid
            + self.fee_due
            - self.fee_paid
        )


class LoanTransaction(models.Model):
    """A money movement on a loan. Never changed but to mark it reversed and to store its allocation."""

    class Kind(models.TextChoices):
        DISBURSEMENT = "disbursement"
        REPAYMENT = "repayment"
        FEE = "fee"
        REVERSAL = "reversal"
        WRITE_OFF = "write_off"

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    on = models.DateField(help_text="Value date.")
    instalment_number = models.PositiveSmallIntegerField(null=True, blank=True, help_text="A fee's instalment.")
    note = models.CharField(max_length=500, blank=True, default="")
    created_by = models.BigIntegerField(null=True, blank=True, help_text="user_service id; empty for the daily job.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    reversal_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    reversed_at = models.DateTimeField(null=True, blank=True)
    # The allocation the last replay gave it (a fee: what it charged; a write-off: what was written off).
    principal_portion = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    interest_portion = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    fee_portion = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    overpaid_portion = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    # The loan's ledger.Balance right after this transaction, as the last replay gave it; empty for a
    # reversal record and a reversed transaction, which are not on the ledger. A past day's book is
    # each loan's latest balance on or before that day (loans/reports.py).
    principal_after = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    interest_after = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    fees_after = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    unpaid_since = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["on", "id"]
        indexes = [
            models.Index(fields=["loan", "on", "id"], name="transaction_loan_on"),
            # The collections report: the repayments of a period.
            models.Index(fields=["on"], name="transaction_repayment_on", condition=Q(kind="repayment")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transaction_amount_positive"),
            models.CheckConstraint(condition=Q(kind__in=ledger.KINDS), name="transaction_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind="reversal", reversal_of__isnull=False) | (~Q(kind="reversal") & Q(reversal_of=None)),
                name="transaction_reversal_names_its_original",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on {self.on} (loan #{self.loan_id})"

    @property
    def is_reversed(self) -> bool:
        return self.reversed_at is not None


class Statement(models.Model):
    """A PDF statement of a loan, rendered by loan_service's Celery worker."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        READY = "ready"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="statements")
    requested_by = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to="statements/%Y/%m/", blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    queued_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["queued_at"], name="statement_queued", condition=Q(status="queued")),
        ]

    def __str__(self) -> str:
        return f"Statement {self.id} of loan #{self.loan_id} ({self.status})"
