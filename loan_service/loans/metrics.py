"""loan_service's business metrics on /metrics (common.business_metrics): loans, decisions, money in and out.

Loans are counted from LoanStatusCount (one primary-key read per status). A
loan's status only moves forward (NEW → APPROVED → DISBURSED → CLOSED or
WRITTEN_OFF, APPROVED → CANCELLED, NEW → REJECTED) and no loan is deleted, so
the totals below only grow: Prometheus' rate() and increase() work on them.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common import business_metrics
from loans.models import STATUSES, Loan, LoanStatusCount, LoanTransaction

APPROVED_SINCE = ("APPROVED", "CANCELLED", "DISBURSED", "CLOSED", "WRITTEN_OFF")  # every status after an approval
DISBURSED_SINCE = ("DISBURSED", "CLOSED", "WRITTEN_OFF")


def loan_families() -> Iterable[Metric]:
    counts = dict.fromkeys(STATUSES, 0) | dict(LoanStatusCount.objects.values_list("status", "count"))
    loans = GaugeMetricFamily("lms_loans", "Loans by status now.", labels=["status"])
    for status, count in sorted(counts.items()):
        loans.add_metric([status], count)
    yield loans
    created = CounterMetricFamily("lms_loans_created", "Loans requested by agents.")
    created.add_metric([], sum(counts.values()))
    yield created
    decided = CounterMetricFamily("lms_loans_decided", "Loans an admin decided, by decision.", labels=["decision"])
    decided.add_metric(["approved"], sum(counts[status] for status in APPROVED_SINCE))
    decided.add_metric(["rejected"], counts[Loan.Status.REJECTED])
    yield decided
    disbursed = CounterMetricFamily("lms_loans_disbursed", "Loans whose principal was paid out.")
    disbursed.add_metric([], sum(counts[status] for status in DISBURSED_SINCE))
    yield disbursed


def repayment_families() -> Iterable[Metric]:
    """Repayments booked (a reversal is its own transaction, so these never go down) and their sum."""
    booked = LoanTransaction.objects.filter(kind=LoanTransaction.Kind.REPAYMENT).aggregate(
        rows=Count("pk"), amount=Sum("amount")
    )
    count = CounterMetricFamily("lms_repayments", "Repayments booked.")
    count.add_metric([], booked["rows"])
    amount = CounterMetricFamily("lms_repaid_amount", "Money repaid, in the loans' currency.")
    amount.add_metric([], float(booked["amount"] or 0))
    yield count
    yield amount


def register() -> None:
    business_metrics.register("loans", loan_families)
    business_metrics.register("repayments", repayment_families, ttl=15.0)  # a sum over the ledger
    business_metrics.register("outbox", business_metrics.outbox_families)
