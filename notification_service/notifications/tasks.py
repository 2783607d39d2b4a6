"""Celery tasks: the event consumer the producers send to by name, and delivery with retries.

Tasks hold no rules: they load what they need and call a service function. Retry
delays are computed here from settings on every retry (Celery reads its own
retry_backoff options only when a task is defined, so settings could not reach them).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import shared_task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError

from common import events
from common.correlation import correlation_scope
from notifications import delivery_policy, services
from notifications.errors import TransientDeliveryError
from notifications.models import DeadLetter, Notification

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
def consume_event(self, message: dict, first_failed_at: str | None = None) -> int:
    """One event from user_service or loan_service: record recipients, create notifications, queue deliveries.

    No event is dropped: one that cannot be read, or whose database errors outlast the retries,
    or that meets any other error, becomes a dead letter an operator can replay.
    `first_failed_at` is carried by this task's own retries (producers send the message only).
    """
    try:
        envelope, payload = events.parse_message(message)
    except (events.UnknownEvent, events.UnsupportedEventVersion, ValidationError) as exc:
        about = message if isinstance(message, dict) else {}
        logger.error("event rejected: %s", exc, extra={"event": about.get("name"), "version": about.get("version")})
        dead_letter(message, reason=DeadLetter.Reason.REJECTED, error=str(exc))
        return 0
    with correlation_scope(envelope.correlation_id):
        try:
            pending = services.notify_for_event(envelope, payload)
        except DATABASE_ERRORS as exc:
            # acks_late acks a task that raised: without a retry or a dead letter the event would be gone.
            _retry_event(self, message, envelope, exc, first_failed_at or _now())
            return 0
        except Exception as exc:  # a bug, or a payload the schemas let through: kept for an operator, not lost
            logger.exception(
                "event consumer failed", extra={"event": envelope.name, "event_id": str(envelope.event_id)}
            )
            dead_letter(message, reason=DeadLetter.Reason.ERROR, error=f"{type(exc).__name__}: {exc}")
            return 0
        logger.info("event consumed", extra={"event": envelope.name, "event_id": str(envelope.event_id)})
        queue_deliveries([notification.pk for notification in pending])
        return len(pending)


def _now() -> str:
    return timezone.now().isoformat()


def _retry_event(task, message: dict, envelope: events.Envelope, exc: Exception, first_failed_at: str) -> None:
    """Raise the task's retry; once the retries are spent, send the event to the dead letters and return."""
    close_old_connections()  # a dropped connection is replaced instead of failing every retry too
    retries, cap = task.request.retries, settings.NOTIFICATION_EVENT_MAX_RETRIES
    about = {"event": envelope.name, "event_id": str(envelope.event_id), "retries": retries, "error": str(exc)}
    if retries >= cap:
        logger.error(
            "event dead-lettered: database errors on every retry; replay it once the database is back", extra=about
        )
        error = f"database errors on {retries + 1} attempts: {type(exc).__name__}: {exc}"
        dead_letter(
            message, reason=DeadLetter.Reason.DATABASE_UNAVAILABLE, error=error, first_failed_at=first_failed_at
        )
        return
    countdown = retry_countdown(retries)
    logger.warning("event consumer hit a database error; will retry", extra={**about, "countdown": countdown})
    raise task.retry(
        args=(message,), kwargs={"first_failed_at": first_failed_at}, countdown=countdown, exc=exc, max_retries=cap
    )


def dead_letter(message, *, reason: str, error: str, first_failed_at: str | None = None) -> None:
    """Hand the message to the dead-letter task, which stores it once the database answers.

    If the broker refuses it too, the event goes back to its queue (Reject with requeue)
    rather than being acknowledged: it is consumed again later, never lost.
    """
    now = _now()
    letter = {
        "message": message,
        "reason": str(reason),
        "error": error[:2000],
        "first_failed_at": first_failed_at or now,
        "last_failed_at": now,
        "failure_id": uuid.uuid4().hex,
    }
    try:
        store_dead_letter.apply_async((letter,), retry_policy=PUBLISH_RETRY)
    except BrokerError as exc:
        logger.critical(
            "dead letter not published: broker unavailable; the event is requeued", extra={"error": str(exc)}
        )
        raise Reject(exc, requeue=True) from exc


# max_retries=None on the task itself: Celery reads a None given to retry() as "the task's default" (3).
@shared_task(
    bind=True,
    name="notifications.store_dead_letter",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def store_dead_letter(self, letter: dict) -> int:
    """Store a dead letter; database errors are retried without limit (capped backoff): it outlives any outage."""
    try:
        stored = services.store_dead_letter(**letter)
    except DATABASE_ERRORS as exc:
        close_old_connections()
        countdown = retry_countdown(self.request.retries)
        logger.warning(
            "dead letter not stored yet: database error; will retry",
            extra={"retries": self.request.retries, "countdown": countdown, "error": str(exc)},
        )
        raise self.retry(countdown=countdown, exc=exc) from exc
    logger.error(
        "dead letter stored",
        extra={"dead_letter_id": stored.pk, "event": stored.event_name, "reason": stored.reason},
    )
    return stored.pk


def queue_replayed(outcomes: list[services.ReplayOutcome]) -> None:
    """Queue the deliveries of replayed dead letters (after the caller's transaction, if any)."""
    queue_deliveries([pk for outcome in outcomes for pk in outcome.pending])


def _publish(task, args: tuple, *, countdown: float | None = None) -> bool:
    """Send one task to the broker; a broker that is down is logged, not raised (the stuck sweep sends it later)."""
    try:
        task.apply_async(args, queue="notifications", retry_policy=PUBLISH_RETRY, countdown=countdown)
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
        if status == Notification.Status.SENDING and not self.request.is_eager:  # eager runs cannot wait: the sweep
            _check_when_stale(delivered)
        logger.info("delivery finished", extra={"notification_id": notification_id, "status": status})
        return status


def _check_when_stale(notification: Notification) -> None:
    """Another worker is sending it (or died doing so): look again once that send would be stale.

    If this task was redelivered because that worker died, the row is taken over then; the
    stuck sweep does the same should this delayed task be lost.
    """
    waited = (timezone.now() - notification.sending_since).total_seconds() if notification.sending_since else 0
    countdown = max(0.0, settings.NOTIFICATION_SENDING_TAKEOVER_SECONDS - waited) + 1
    _publish(deliver_notification, (notification.pk,), countdown=countdown)


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
