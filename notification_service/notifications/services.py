"""Every write of notification_service: events become notifications, deliveries change their status."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.template import Context, Engine
from django.utils import timezone

from common import events
from notifications.backends import backend_for
from notifications.errors import NotificationNotFound, PermanentDeliveryError, TransientDeliveryError
from notifications.models import CORRELATION_ID_LENGTH, Notification, Recipient

logger = logging.getLogger("lms.notifications")

# Plain-text templates: no HTML escaping of names and notes in emails.
TEMPLATES = Engine(dirs=[str(Path(__file__).parent / "templates")], autoescape=False)
ADMIN_MESSAGE = "admin.message"


@dataclass(frozen=True)
class Audience:
    user_id: int
    role: str  # "customer" or "agent": which wording of the template


def _audiences(payload: events.Payload) -> list[Audience]:
    """Who an event notifies (API.md); loan.updated notifies nobody."""
    match payload:
        case events.UserRegistered() | events.AgentApproved() | events.AgentRejected():
            return [Audience(payload.user_id, getattr(payload, "role", "agent"))]
        case events.LoanApproved() | events.LoanRejected() | events.LoanOverdue() | events.LoanWrittenOff():
            return [Audience(payload.customer_id, "customer"), Audience(payload.agent_id, "agent")]
        case (
            events.LoanCreated()
            | events.LoanTermsChanged()
            | events.LoanDisbursed()
            | events.LoanCancelled()
            | events.RepaymentReceived()
            | events.RepaymentReversed()
            | events.InstalmentDue()
            | events.LoanClosed()
        ):
            return [Audience(payload.customer_id, "customer")]
    return []


def remember_recipient(payload: events.Payload) -> None:
    """Keep the local copy of a user's contact data up to date from a user event."""
    if isinstance(payload, (events.UserRegistered, events.AgentApproved, events.AgentRejected)):
        defaults = {"email": payload.email, "first_name": payload.first_name, "last_name": payload.last_name}
        if isinstance(payload, events.UserRegistered):
            defaults["role"] = payload.role
        Recipient.objects.update_or_create(user_id=payload.user_id, defaults=defaults)


def _render(kind: str, part: str, context: dict) -> str:
    return TEMPLATES.get_template(f"notifications/{kind}.{part}.txt").render(Context(context)).strip()


def _collapse_whitespace(text: str) -> str:
    """Whitespace runs (newlines from a user's name included) become one space: a mail header is one line."""
    return " ".join(text.split())


def channels() -> list[str]:
    """in_app always, plus the channels configured in settings."""
    extra = [c for c in settings.NOTIFICATION_CHANNELS if c != Notification.Channel.IN_APP]
    return [Notification.Channel.IN_APP, *extra]


def notify_for_event(envelope: events.Envelope, payload: events.Payload) -> list[Notification]:
    """Create the notifications an event calls for, once: a redelivered event creates nothing new.

    Returns the notifications of this event that still wait for delivery.
    """
    with transaction.atomic():
        remember_recipient(payload)
        audiences = _audiences(payload)
        if not audiences:
            return []
        recipients = Recipient.objects.in_bulk([audience.user_id for audience in audiences])
        rows = []
        for audience in audiences:
            context = {"event": payload, "recipient": recipients.get(audience.user_id), "audience": audience.role}
            subject = _collapse_whitespace(_render(envelope.name, "subject", context))
            body = _render(envelope.name, "body", context)
            rows += [
                _new(
                    envelope.event_id, audience.user_id, channel, envelope.name, subject, body, envelope.correlation_id
                )
                for channel in channels()
            ]
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        return list(Notification.objects.filter(event_id=envelope.event_id, status=Notification.Status.PENDING))


def _new(event_id, user_id, channel, kind, subject, body, correlation_id) -> Notification:
    in_app = channel == Notification.Channel.IN_APP
    return Notification(
        event_id=event_id,
        user_id=user_id,
        channel=channel,
        kind=kind,
        subject=subject[:200],
        body=body,
        correlation_id=correlation_id[:CORRELATION_ID_LENGTH],
        # In the app, being stored is being delivered.
        status=Notification.Status.SENT if in_app else Notification.Status.PENDING,
        sent_at=timezone.now() if in_app else None,
        attempts=1 if in_app else 0,
    )


def queue_message(*, user_ids: list[int], channel: str, subject: str, body: str, correlation_id: str = "") -> list:
    """An admin's message to users: one bulk insert; returns the rows (pending unless in_app)."""
    event_id = uuid.uuid4()
    rows = [_new(event_id, user_id, channel, ADMIN_MESSAGE, subject, body, correlation_id) for user_id in user_ids]
    with transaction.atomic():
        return Notification.objects.bulk_create(rows)


def deliver(*, notification_id: int) -> Notification | None:
    """Send one pending notification through its channel's backend and record the outcome.

    The row is locked while sending, so two workers never send it at once, and
    a notification that is no longer pending is left alone (redelivery is harmless).
    Permanent errors fail it at once; any other error, a backend's unexpected one
    included, is recorded and raised as TransientDeliveryError for the task to retry.
    """
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if notification is None or notification.status != Notification.Status.PENDING:
            return notification
        notification.attempts += 1
        recipient = Recipient.objects.filter(pk=notification.user_id).first()
        try:
            notification.provider_message_id = backend_for(notification.channel).send(notification, recipient)
        except PermanentDeliveryError as exc:
            return _finish(notification, status=Notification.Status.FAILED, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever a backend raises, the row must not stay pending forever
            failure = _as_transient(exc)  # recorded and committed below, then raised for the task to retry
            notification.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            notification.save(update_fields=["attempts", "last_error"])
        else:
            return _finish(notification, status=Notification.Status.SENT, error="")
    raise failure


def _as_transient(exc: Exception) -> TransientDeliveryError:
    if isinstance(exc, TransientDeliveryError):
        return exc
    logger.warning("unexpected delivery error, will be retried", exc_info=exc)
    failure = TransientDeliveryError(f"{type(exc).__name__}: {exc}")
    failure.__cause__ = exc
    return failure


def _finish(notification: Notification, *, status: str, error: str) -> Notification:
    notification.status, notification.last_error = status, error[:2000]
    notification.sent_at = timezone.now() if status == Notification.Status.SENT else None
    notification.save(update_fields=["status", "last_error", "sent_at", "attempts", "provider_message_id"])
    return notification


def mark_failed(*, notification_id: int, error: str) -> None:
    """The last retry failed: the notification becomes a dead letter an admin can resend."""
    Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).update(
        status=Notification.Status.FAILED, last_error=error[:2000]
    )


def mark_queued(*, notification_ids: list[int]) -> None:
    """A delivery task for these notifications is published now: the stuck sweep counts from this moment.

    Without it a row whose first task waits behind a backlog longer than the sweep's threshold
    would be re-queued, and failed at the re-queue cap, while that task is still in the queue.
    A retry already due later keeps its time (a redelivered event queues its pending rows again).
    """
    Notification.objects.filter(pk__in=notification_ids, status=Notification.Status.PENDING).update(
        next_attempt_at=Greatest(F("next_attempt_at"), timezone.now())
    )


def schedule_retry(*, notification_id: int, delay: float) -> None:
    """A transient failure: the next attempt is due in `delay` seconds, and the stuck sweep waits for it."""
    Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )


def requeue_stuck(*, stuck_after: timedelta, max_requeues: int, limit: int = 1000) -> list[int]:
    """Pending notifications overdue by `stuck_after` lost their task: returns the ids to queue again.

    Each is re-queued at most `max_requeues` times; one still pending after that fails
    (a dead letter an admin can resend) instead of being re-queued forever.
    """
    now = timezone.now()
    with transaction.atomic():
        stuck = list(
            Notification.objects.select_for_update(skip_locked=True)  # one being delivered right now is not stuck
            .filter(status=Notification.Status.PENDING, next_attempt_at__lt=now - stuck_after)
            .order_by("next_attempt_at")
            .values_list("pk", "requeues")[:limit]
        )
        again = [pk for pk, requeues in stuck if requeues < max_requeues]
        given_up = [pk for pk, requeues in stuck if requeues >= max_requeues]
        Notification.objects.filter(pk__in=again).update(requeues=F("requeues") + 1, next_attempt_at=now)
        Notification.objects.filter(pk__in=given_up).update(
            status=Notification.Status.FAILED,
            last_error=f"stuck: still pending after being re-queued {max_requeues} time(s); resend it from the admin",
        )
    if given_up:
        logger.error("stuck notifications failed after their re-queues", extra={"notification_ids": given_up})
    return again


def resend(*, notification_ids: list[int]) -> list[int]:
    """Put failed notifications back to pending, with a fresh re-queue budget; returns the ids to queue again."""
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update()
            .filter(pk__in=notification_ids, status=Notification.Status.FAILED)
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            status=Notification.Status.PENDING, last_error="", requeues=0, next_attempt_at=timezone.now()
        )
    return ids


def mark_read(*, notification_id: int, user_id: int) -> Notification:
    """The owner has read it; reading twice keeps the first time."""
    notification = Notification.objects.filter(pk=notification_id, user_id=user_id).first()
    if notification is None:
        raise NotificationNotFound()
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification
