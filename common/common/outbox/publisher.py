"""Writing events to the outbox, and relaying unsent ones to the broker."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from common import tracing
from common.correlation import get_correlation_id
from common.events import EVENT_QUEUE, EVENT_TASK_NAME, Envelope, Payload
from common.outbox.models import OutboxMessage

logger = logging.getLogger("lms.outbox")


class OutsideTransaction(RuntimeError):
    """publish() was called outside a transaction: the event could outlive a rolled-back change."""


def publish(payload: Payload) -> Envelope:
    """Record `payload` as an event in the caller's open transaction.

    It reaches the broker only if that transaction commits (the relay sends
    it), so a change and its announcement are never separated.
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutsideTransaction("publish() must run inside transaction.atomic()")
    envelope = Envelope.wrap(payload, correlation_id=get_correlation_id())
    _row(envelope).save(force_insert=True)
    return envelope


def envelope_row(payload: Payload) -> OutboxMessage:
    """An unsaved outbox row for `payload`: for writing many events in one bulk_create, in the caller's transaction."""
    return _row(Envelope.wrap(payload, correlation_id=get_correlation_id()))


def _row(envelope: Envelope) -> OutboxMessage:
    return OutboxMessage(
        event_id=envelope.event_id,
        name=envelope.name,
        message=envelope.to_message(),
        traceparent=tracing.current_traceparent(),
    )


def relay_pending(celery_app, *, batch_size: int = 100) -> int:
    """Send up to `batch_size` unsent events to the broker, oldest first; returns how many were sent.

    Rows are locked with SKIP LOCKED, so several relays never send the same
    row at once. The task id is the event id, and the consumer is idempotent
    on it, so a row re-sent after a crash between publish and mark is harmless.
    A broker error stops the batch: what was sent is marked, the rest waits.
    While tracing, each event is sent as a child of the span that wrote it, so
    the task that consumes it joins that trace; the pass itself (its queries,
    several a second while idle) is not traced.
    """
    with tracing.untraced():
        return _relay_batch(celery_app, batch_size)


def _relay_batch(celery_app, batch_size: int) -> int:
    sent = 0
    with transaction.atomic():
        rows = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True)
            .order_by("created_at")[:batch_size]
        )
        for row in rows:
            try:
                with tracing.parent_span(row.traceparent):
                    celery_app.send_task(
                        EVENT_TASK_NAME,
                        args=[row.message],
                        task_id=str(row.event_id),
                        queue=EVENT_QUEUE,
                        retry=True,
                        retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
                    )
            except Exception as exc:  # noqa: BLE001 - any broker failure: keep the row for the next pass
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                row.save(update_fields=["attempts", "last_error"])
                logger.warning(
                    "broker unavailable; %s unsent events wait",
                    len(rows) - sent,
                    extra={"event_id": str(row.event_id), "error": row.last_error},
                )
                break
            row.sent_at = timezone.now()
            row.attempts += 1
            row.save(update_fields=["sent_at", "attempts"])
            sent += 1
    return sent
