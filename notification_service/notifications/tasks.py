"""Celery tasks: the event consumer the producers send to by name, and delivery with retries.

Tasks hold no rules: they load what they need and call a service function. Retry
delays are computed here from settings on every retry (Celery reads its own
retry_backoff options only when a task is defined, so settings could not reach them).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError

from common import events
from common.correlation import correlation_scope
from notifications import delivery_policy, services
from notifications.errors import TransientDeliveryError
from notifications.models import Notification

logger = logging.getLogger("lms.notifications")

BATCH_CHUNK = 100  # one fan-out task per this many notifications of an admin's batch
DATABASE_ERRORS = (OperationalError, InterfaceError)  # the database is down or the connection dropped: retry
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}  # a broker that is down: answer fast


def retry_countdown(retries: int) -> float:
    """Seconds before the retry after `retries` earlier ones: exponential backoff with full jitter, from settings."""
    return delivery_policy.retry_delay(
        retries, base=settings.NOTIFICATION_RETRY_BACKOFF_SECONDS, cap=settings.NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS
    )


@shared_task(bind=True, name=events.EVENT_TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def consume_event(self, message: dict) -> int:
    """One event from user_service or loan_service: record recipients, create notifications, queue deliveries."""
    try:
        envelope, payload = events.parse_message(message)
    except (events.UnknownEvent, events.UnsupportedEventVersion, ValidationError) as exc:
        logger.error("event rejected: %s", exc, extra={"event": message.get("name"), "version": message.get("version")})
        return 0
    with correlation_scope(envelope.correlation_id):
        try:
            pending = services.notify_for_event(envelope, payload)
        except DATABASE_ERRORS as exc:
            # acks_late acks a task that raised: without a retry the event would be gone.
            _retry_event(self, envelope, exc)
            raise
        logger.info("event consumed", extra={"event": envelope.name, "event_id": str(envelope.event_id)})
        queue_deliveries([notification.pk for notification in pending])
        return len(pending)


def _retry_event(task, envelope: events.Envelope, exc: Exception) -> None:
    """Raise the task's retry; once the retries are spent, log the loss loudly and return."""
    close_old_connections()  # a dropped connection is replaced instead of failing every retry too
    retries, cap = task.request.retries, settings.NOTIFICATION_EVENT_MAX_RETRIES
    about = {"event": envelope.name, "event_id": str(envelope.event_id), "retries": retries, "error": str(exc)}
    if retries >= cap:
        logger.critical("EVENT LOST: database errors on every retry; replay it from the producer's outbox", extra=about)
        return
    countdown = retry_countdown(retries)
    logger.warning("event consumer hit a database error; will retry", extra={**about, "countdown": countdown})
    raise task.retry(countdown=countdown, exc=exc, max_retries=cap)


def _publish(task, args: tuple) -> bool:
    """Send one task to the broker; a broker that is down is logged, not raised (the stuck sweep sends it later)."""
    try:
        task.apply_async(args, queue="notifications", retry_policy=PUBLISH_RETRY)
    except BrokerError as exc:
        logger.error("broker unavailable, delivery left to the stuck sweep: %s", exc, extra={"task": task.name})
        return False
    return True


def publish_deliveries(notification_ids: list[int]) -> None:
    """Queue a delivery task per notification now; stops at the first broker error (the sweep does the rest).

    The rows are marked queued first (one UPDATE), so the stuck sweep waits its full threshold
    from this publish, however long they waited before it (e.g. a batch's fan-out behind a backlog).
    """
    if not notification_ids:
        return
    services.mark_queued(notification_ids=notification_ids)
    for notification_id in notification_ids:
        if not _publish(deliver_notification, (notification_id,)):
            return


def queue_deliveries(notification_ids: list[int]) -> None:
    """Queue a delivery task per notification, after the current transaction (if any) commits."""
    transaction.on_commit(lambda: publish_deliveries(notification_ids))


def queue_batch(notifications: list[Notification]) -> None:
    """Queue the pending ones of an admin's batch: one fan-out task per chunk, not one publish per user.

    The rows were created a moment ago (next_attempt_at is their creation); the fan-out task marks
    them queued again when it publishes their delivery tasks.
    """
    pending = [n.pk for n in notifications if n.status == Notification.Status.PENDING]
    for start in range(0, len(pending), BATCH_CHUNK):
        if not _publish(deliver_many, (pending[start : start + BATCH_CHUNK],)):
            return


@shared_task(name="notifications.deliver_many", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_many(notification_ids: list[int]) -> None:
    """Fan a batch out into one delivery task each (the API queues one task per chunk of a batch)."""
    queue_deliveries(notification_ids)


@shared_task(bind=True, name="notifications.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_notification(self, notification_id: int) -> str:
    """Deliver one notification; transient errors retry with exponential backoff and jitter, then it fails."""
    notification = Notification.objects.filter(pk=notification_id).only("correlation_id").first()
    with correlation_scope(notification.correlation_id if notification else ""):
        try:
            delivered = services.deliver(notification_id=notification_id)
        except TransientDeliveryError as exc:
            return _retry_or_fail(self, notification_id, exc)
        status = delivered.status if delivered else "missing"
        logger.info("delivery finished", extra={"notification_id": notification_id, "status": status})
        return status


def _retry_or_fail(task, notification_id: int, exc: TransientDeliveryError) -> str:
    retries, cap = task.request.retries, settings.NOTIFICATION_MAX_RETRIES
    if retries >= cap:
        services.mark_failed(notification_id=notification_id, error=f"gave up after {retries} retries: {exc}")
        logger.warning("delivery failed for good", extra={"notification_id": notification_id, "error": str(exc)})
        return Notification.Status.FAILED
    countdown = retry_countdown(retries)
    services.schedule_retry(notification_id=notification_id, delay=countdown)
    logger.info(
        "delivery will be retried",
        extra={"notification_id": notification_id, "error": str(exc), "countdown": countdown},
    )
    raise task.retry(countdown=countdown, exc=exc, max_retries=cap)


@shared_task(name="notifications.requeue_stuck", ignore_result=True)
def requeue_stuck() -> int:
    """Beat: queue again what is long overdue (its task was lost, e.g. the broker was down), a few times at most."""
    ids = services.requeue_stuck(
        stuck_after=timedelta(seconds=settings.NOTIFICATION_STUCK_AFTER_SECONDS),
        max_requeues=settings.NOTIFICATION_MAX_REQUEUES,
    )
    publish_deliveries(ids)
    return len(ids)
