"""PDF statements: requested through the API, rendered by loan_service's Celery worker into Django's storage."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from loans import statement_pdf
from loans.errors import StatementNotFound
from loans.models import Loan, Statement

logger = logging.getLogger("lms.loans.statements")
MAX_ATTEMPTS = 3
RENDER_TASK = "loans.render_statement"
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


def request_statement(*, loan: Loan, user_id: int) -> Statement:
    """Queue a statement of `loan`; the worker renders it after this transaction commits."""
    with transaction.atomic():
        statement = Statement.objects.create(loan=loan, requested_by=user_id)
        transaction.on_commit(lambda: queue_render(statement.pk))
    return statement


def queue_render(statement_id) -> None:
    """Send the render task by name (loans.tasks runs it); a broker that is down is logged, the sweep resends."""
    try:
        current_app.send_task(RENDER_TASK, args=(str(statement_id),), queue="loans", retry_policy=PUBLISH_RETRY)
    except BrokerError as exc:
        logger.error(
            "broker unavailable, statement left to the sweep: %s", exc, extra={"statement_id": str(statement_id)}
        )


def get_statement(*, loan: Loan, statement_id) -> Statement:
    """The statement of this loan, or StatementNotFound (another loan's id included)."""
    statement = Statement.objects.filter(pk=statement_id, loan=loan).first()
    if statement is None:
        raise StatementNotFound()
    return statement


def statement_data(loan: Loan) -> statement_pdf.StatementData:
    """What the PDF shows, read from the loan's stored instalments and transactions."""
    lines = tuple(
        statement_pdf.StatementLine(
            number=row.number,
            due_date=row.due_date,
            principal_due=row.principal_due,
            interest_due=row.interest_due,
            fee_due=row.fee_due,
            principal_paid=row.principal_paid,
            interest_paid=row.interest_paid,
            fee_paid=row.fee_paid,
            paid_off_on=row.paid_off_on,
        )
        for row in loan.instalments.order_by("number")
    )
    moves = tuple(
        statement_pdf.StatementTransaction(
            id=tx.id,
            kind=tx.kind,
            on=tx.on,
            amount=tx.amount,
            principal=tx.principal_portion,
            interest=tx.interest_portion,
            fee=tx.fee_portion,
            reversed=tx.is_reversed,
            note=tx.note,
        )
        for tx in loan.transactions.order_by("on", "id")
    )
    return statement_pdf.StatementData(
        loan_id=loan.pk,
        customer_id=loan.customer_id,
        agent_id=loan.agent_id,
        status=loan.status,
        principal=loan.principal,
        interest=loan.interest,
        months=loan.months,
        emi=loan.emi,
        disbursed_on=loan.disbursed_on,
        end_date=loan.end_date,
        generated_at=timezone.now(),
        outstanding_principal=loan.outstanding_principal,
        outstanding_interest=loan.outstanding_interest,
        outstanding_fees=loan.outstanding_fees,
        total_outstanding=loan.total_outstanding,
        days_past_due=loan.days_past_due,
        next_due_date=loan.next_due_date,
        next_due_amount=loan.next_due_amount,
        instalments=lines,
        transactions=moves,
    )


def render(*, statement_id) -> Statement | None:
    """Render a queued statement and store its file; one already rendered is left alone (redelivery)."""
    with transaction.atomic():
        statement = Statement.objects.select_for_update().filter(pk=statement_id).first()
        if statement is None or statement.status != Statement.Status.QUEUED:
            return statement
        statement.attempts += 1
        try:
            pdf = statement_pdf.render_statement(statement_data(statement.loan))
        except Exception as exc:
            logger.exception("statement rendering failed", extra={"statement_id": str(statement.pk)})
            statement.error = f"{type(exc).__name__}: {exc}"[:2000]
            if statement.attempts >= MAX_ATTEMPTS:
                statement.status = Statement.Status.FAILED
            statement.save(update_fields=["attempts", "error", "status"])
            return statement
        statement.file.save(f"loan-{statement.loan_id}-{statement.pk}.pdf", ContentFile(pdf), save=False)
        statement.status, statement.ready_at, statement.error = Statement.Status.READY, timezone.now(), ""
        statement.save(update_fields=["file", "status", "ready_at", "error", "attempts"])
    return statement


def stale_statements(*, older_than: timedelta, limit: int = 500) -> list:
    """Queued statements whose task was lost (the broker was down): their ids, marked queued again now."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Statement.objects.select_for_update(skip_locked=True)
            .filter(status=Statement.Status.QUEUED, queued_at__lt=now - older_than)
            .values_list("pk", flat=True)[:limit]
        )
        Statement.objects.filter(pk__in=ids).update(queued_at=now)
    return ids
