"""A loan and the invariants one row must always keep; its full history through simple-history."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from loans import schedule


class LoanStatusCount(models.Model):
    """How many loans have each status, kept by the services in the transaction of each change.

    Counting 30,000 APPROVED loans for a page of 20 took longer than the whole rest of
    the request; one row per status makes the admin list's `count` a primary-key read.
    """

    status = models.CharField(max_length=8, primary_key=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(count__gte=0), name="loan_status_count_not_negative")]

    def __str__(self) -> str:
        return f"{self.status}: {self.count}"


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

    # Ids from user_service: no foreign keys across services.
    customer_id = models.BigIntegerField()
    agent_id = models.BigIntegerField()
    principal = models.DecimalField(max_digits=14, decimal_places=2)
    interest = models.DecimalField(max_digits=5, decimal_places=2, help_text="Nominal annual rate, percent.")
    months = models.PositiveSmallIntegerField()
    emi = models.DecimalField(max_digits=14, decimal_places=2)
    amount = models.DecimalField(max_digits=16, decimal_places=2, help_text="Total payable.")
    total_interest = models.DecimalField(max_digits=16, decimal_places=2)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.NEW)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    decided_by = models.BigIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LoanQuerySet.as_manager()

    # Who made each change is the user id from the token (there is no user table here).
    history = HistoricalRecords(
        history_user_id_field=models.BigIntegerField(null=True, blank=True),
        history_user_getter=lambda historical: historical.history_user_id,
        history_user_setter=lambda historical, user_id: setattr(historical, "history_user_id", user_id),
        excluded_fields=["updated_at"],
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="loan_newest"),
            models.Index(fields=["status", "-created_at", "-id"], name="loan_status_newest"),
            models.Index(fields=["customer_id", "-created_at", "-id"], name="loan_customer_newest"),
            models.Index(fields=["agent_id", "-created_at", "-id"], name="loan_agent_newest"),
            models.Index(fields=["principal"], name="loan_principal"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["NEW", "APPROVED", "REJECTED"]), name="loan_status_valid"),
            models.CheckConstraint(condition=Q(principal__gt=0), name="loan_principal_positive"),
            models.CheckConstraint(condition=Q(months__gt=0), name="loan_months_positive"),
            models.CheckConstraint(
                condition=(Q(status="NEW", decided_by__isnull=True, decided_at__isnull=True))
                | (~Q(status="NEW") & Q(decided_by__isnull=False, decided_at__isnull=False)),
                name="loan_decision_iff_decided",
            ),
            models.CheckConstraint(
                condition=Q(status="APPROVED", start_date__isnull=False, end_date__isnull=False)
                | (~Q(status="APPROVED") & Q(start_date__isnull=True, end_date__isnull=True)),
                name="loan_dates_iff_approved",
            ),
        ]

    def __str__(self) -> str:
        return f"Loan #{self.pk} ({self.status})"

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


# Every stored field of a loan, in table order (no foreign keys or db_column: names are the columns).
LOAN_FIELDS = [field.name for field in Loan._meta.concrete_fields]
