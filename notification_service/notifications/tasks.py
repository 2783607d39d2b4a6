"""Celery tasks: the event consumer the producers send to by name, and delivery with retries.

Tasks hold no rules: they load what they need and call a service function.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from common import events
from common.correlation import correlation_scope
from notifications import services
from notifications.errors import TransientDeliveryError
from notifications.models import Notification

logger = logging.getLogger("lms.notifications")


@shared_task(name=events.EVENT_TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def consume_event(message: dict) -> int:
    """One event from user_service or loan_service: record recipients, create notifications, queue deliveries."""
    try:
        envelope, payload = events.parse_message(message)
    except (events.UnknownEvent, events.UnsupportedEventVersion, ValidationError) as exc:
        logger.error("event rejected: %s", exc, extra={"event": message.get("name"), "version": message.get("version")})
        return 0
    with correlation_scope(envelope.correlation_id):
        pending = services.notify_for_event(envelope, payload)
        logger.info("event consumed", extra={"event": envelope.name, "event_id": str(envelope.event_id)})
        queue_deliveries([notification.pk for notification in pending])
        return len(pending)


def queue_deliveries(notification_ids: list[int]) -> None:
    """Queue a delivery task per notification, after the current transaction (if any) commits."""

    def send() -> None:
        for notification_id in notification_ids:
            deliver_notification.apply_async((notification_id,), queue="notifications")

    transaction.on_commit(send)


@shared_task(name="notifications.deliver_many", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_many(notification_ids: list[int]) -> None:
    """Fan a batch out into one delivery task each (the API queues one task per chunk of a batch)."""
    queue_deliveries(notification_ids)


@shared_task(
    bind=True,
    name="notifications.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(TransientDeliveryError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=None,  # set per call from settings, below
)
def deliver_notification(self, notification_id: int) -> str:
    """Deliver one notification; transient errors retry with exponential backoff and jitter, then it fails."""
    self.max_retries = settings.NOTIFICATION_MAX_RETRIES
    self.retry_backoff = settings.NOTIFICATION_RETRY_BACKOFF_SECONDS
    self.retry_backoff_max = settings.NOTIFICATION_RETRY_BACKOFF_MAX_SECONDS
    notification = Notification.objects.filter(pk=notification_id).only("correlation_id").first()
    with correlation_scope(notification.correlation_id if notification else ""):
        try:
            delivered = services.deliver(notification_id=notification_id)
        except TransientDeliveryError as exc:
            if self.request.retries >= self.max_retries:
                services.mark_failed(notification_id=notification_id, error=f"gave up after retries: {exc}")
                logger.warning("delivery failed for good", extra={"notification_id": notification_id})
                return Notification.Status.FAILED
            logger.info("delivery will be retried", extra={"notification_id": notification_id, "error": str(exc)})
            raise
        status = delivered.status if delivered else "missing"
        logger.info("delivery finished", extra={"notification_id": notification_id, "status": status})
        return status


@shared_task(name="notifications.requeue_stuck", ignore_result=True)
def requeue_stuck() -> int:
    """Beat: queue again what has waited too long (its task was lost between commit and broker)."""
    cutoff = timezone.now() - timedelta(seconds=settings.NOTIFICATION_STUCK_AFTER_SECONDS)
    ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:1000]
    )
    for notification_id in ids:
        deliver_notification.apply_async((notification_id,), queue="notifications")
    return len(ids)
