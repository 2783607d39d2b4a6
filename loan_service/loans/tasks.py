"""loan_service's own Celery tasks (queue "loans"): statements and the daily job. They hold no rules."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from loans import daily, statements

logger = logging.getLogger("lms.loans.tasks")
STALE_AFTER = timedelta(minutes=5)


@shared_task(name=statements.RENDER_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def render_statement(statement_id: str) -> str:
    """Render one statement's PDF."""
    statement = statements.render(statement_id=statement_id)
    status = statement.status if statement else "missing"
    logger.info("statement rendered", extra={"statement_id": statement_id, "status": status})
    return status


@shared_task(name="loans.requeue_statements", ignore_result=True)
def requeue_statements() -> int:
    """Beat: send again the statements still queued after STALE_AFTER (their task was lost)."""
    ids = statements.stale_statements(older_than=STALE_AFTER)
    for statement_id in ids:
        statements.queue_render(statement_id)
    return len(ids)


@shared_task(name="loans.run_daily", acks_late=True, ignore_result=True)
def run_daily(as_of: str | None = None) -> str:
    """Beat, once a day: the daily job as of today (UTC) or `as_of` (YYYY-MM-DD)."""
    day = timezone.localdate() if as_of is None else timezone.datetime.fromisoformat(as_of).date()
    return str(daily.run_daily(as_of=day))
