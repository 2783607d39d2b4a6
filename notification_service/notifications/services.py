"""Every write of notification_service: events become notifications, deliveries change their status."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.template import Context, Engine
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from pydantic import ValidationError

from common import admin_sso, events, tracing
from common.correlation import correlation_scope
from common.permissions import ADMIN
from notifications.backends import backend_for
from notifications.errors import NotificationNotFound, PermanentDeliveryError, TransientDeliveryError
from notifications.models import CORRELATION_ID_LENGTH, DeadLetter, Notification, Recipient

logger = logging.getLogger("lms.notifications")

# Plain-text templates: no HTML escaping of names and notes in emails.
TEMPLATES = Engine(dirs=[str(Path(__file__).parent / "templates")], autoescape=False)
ADMIN_MESSAGE = "admin.message"
RECIPIENT_DEACTIVATED = "recipient deactivated: not delivered"
POSSIBLY_SENT = "possibly sent: a worker stopped while sending it; sent again with the same Message-ID"


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


USER_EVENTS = (
    events.UserRegistered,
    events.AgentApproved,
    events.AgentRejected,
    events.UserProfileChanged,
    events.UserDeactivated,
)


def remember_recipient(envelope: events.Envelope, payload: events.Payload) -> None:
    """Keep the local copy of a user's contact data up to date from a user event.

    Contact data comes from the newest event only (relays may deliver an older one late, a
    replayed dead letter is older still). A deactivation always applies: there is no way back
    in the events, so an old one cannot undo a newer state.
    """
    if not isinstance(payload, USER_EVENTS):
        return
    recipient = Recipient.objects.select_for_update().filter(pk=payload.user_id).first()
    if recipient is None:
        recipient = Recipient(user_id=payload.user_id)
    if recipient.as_of is None or recipient.as_of <= envelope.occurred_at:
        recipient.email, recipient.as_of = payload.email, envelope.occurred_at
        recipient.first_name = getattr(payload, "first_name", recipient.first_name)
        recipient.last_name = getattr(payload, "last_name", recipient.last_name)
        recipient.role = getattr(payload, "role", recipient.role)
    if isinstance(payload, events.UserDeactivated) and recipient.is_active:
        recipient.is_active, recipient.deactivated_at = False, envelope.occurred_at
    recipient.save()
    _end_admin_access(payload)


def _end_admin_access(payload: events.Payload) -> None:
    """A deactivated user, or one no longer an admin, keeps no staff account in this service's admin."""
    deactivated = isinstance(payload, events.UserDeactivated)
    demoted = isinstance(payload, events.UserProfileChanged) and payload.role != ADMIN
    if (deactivated or demoted) and admin_sso.deactivate_mirror(payload.user_id):
        logger.warning("admin account of this service deactivated", extra={"user_id": payload.user_id})


def _inactive(user_ids: list[int]) -> set[int]:
    """The users among `user_ids` who were deactivated: nothing is delivered to them."""
    return set(Recipient.objects.filter(pk__in=user_ids, is_active=False).values_list("pk", flat=True))


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
        remember_recipient(envelope, payload)
        audiences = _audiences(payload)
        if not audiences:
            return []
        recipients = Recipient.objects.in_bulk([audience.user_id for audience in audiences])
        rows = []
        for audience in audiences:
            context = {"event": payload, "recipient": recipients.get(audience.user_id), "audience": audience.role}
            subject = _collapse_whitespace(_render(envelope.name, "subject", context))
            body = _render(envelope.name, "body", context)
            skipped = not getattr(recipients.get(audience.user_id), "is_active", True)
            rows += [
                _new(
                    envelope.event_id,
                    audience.user_id,
                    channel,
                    envelope.name,
                    subject,
                    body,
                    envelope.correlation_id,
                    skipped=skipped,
                )
                for channel in channels()
            ]
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        return list(Notification.objects.filter(event_id=envelope.event_id, status=Notification.Status.PENDING))


def _new(event_id, user_id, channel, kind, subject, body, correlation_id, *, skipped=False) -> Notification:
    in_app = channel == Notification.Channel.IN_APP and not skipped
    if skipped:
        state = {"status": Notification.Status.SKIPPED, "last_error": RECIPIENT_DEACTIVATED}
    elif in_app:  # in the app, being stored is being delivered
        state = {"status": Notification.Status.SENT, "sent_at": timezone.now(), "attempts": 1}
    else:
        state = {"status": Notification.Status.PENDING}
    return Notification(
        event_id=event_id,
        user_id=user_id,
        channel=channel,
        kind=kind,
        subject=subject[:200],
        body=body,
        correlation_id=correlation_id[:CORRELATION_ID_LENGTH],
        **state,
    )


def queue_message(*, user_ids: list[int], channel: str, subject: str, body: str, correlation_id: str = "") -> list:
    """An admin's message to users: one bulk insert; returns the rows (pending unless in_app)."""
    event_id, inactive = uuid.uuid4(), _inactive(user_ids)
    rows = [
        _new(event_id, user_id, channel, ADMIN_MESSAGE, subject, body, correlation_id, skipped=user_id in inactive)
        for user_id in user_ids
    ]
    with transaction.atomic():
        return Notification.objects.bulk_create(rows)


def deliver(*, notification_id: int) -> Notification | None:
    """Send one pending notification through its channel's backend and record the outcome.

    The row is claimed first ("sending", committed) and the provider is talked to outside any
    transaction, so no lock is held while SMTP waits and a worker that dies mid-send leaves a
    trace: a second worker leaves a row "sending" alone until it is stale (see `_claim`).
    A notification that is not pending is left alone (redelivery is harmless). Permanent
    errors fail it at once; any other error, a backend's unexpected one included, puts it back
    to pending with the error recorded and is raised as TransientDeliveryError for the task to retry.
    """
    notification, recipient, claimed = _claim(notification_id)
    if not claimed:
        return notification
    try:
        with tracing.span(
            f"notification.send {notification.channel}", kind="CLIENT", attributes=_span_about(notification)
        ):
            provider_id = backend_for(notification.channel).send(notification, recipient)
    except PermanentDeliveryError as exc:
        return _finish(notification, status=Notification.Status.FAILED, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - whatever a backend raises, the row must not stay pending forever
        failure = _as_transient(exc)
        _finish(notification, status=Notification.Status.PENDING, error=f"{type(exc).__name__}: {exc}")
        raise failure  # noqa: B904 - its cause is set by _as_transient (it may be exc itself)
    notification.provider_message_id = provider_id
    # A copy sent after a takeover keeps its note: it may be the second one the recipient got.
    note = POSSIBLY_SENT if notification.last_error == POSSIBLY_SENT else ""
    return _finish(notification, status=Notification.Status.SENT, error=note)


def _span_about(notification: Notification) -> dict:
    return {
        "lms.notification.id": notification.pk,
        "lms.notification.channel": notification.channel,
        "lms.notification.attempt": notification.attempts,
    }


def sending_is_stale(notification: Notification, *, now=None) -> bool:
    """A row "sending" for longer than any send can take: its worker died (after or before the provider took it)."""
    limit = timedelta(seconds=settings.NOTIFICATION_SENDING_TAKEOVER_SECONDS)
    return notification.sending_since is None or notification.sending_since < (now or timezone.now()) - limit


def _claim(notification_id: int) -> tuple[Notification | None, Recipient | None, bool]:
    """Mark the row "sending" (one more attempt) and commit, or say why not: (row, recipient, claimed).

    Pending rows are claimed; a "sending" row only once stale, with POSSIBLY_SENT recorded (the
    backend sends the same Message-ID again, so the receiving side can drop the copy). A row of
    a deactivated recipient becomes "skipped" instead.
    """
    now = timezone.now()
    with transaction.atomic():
        notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if notification is None:
            return None, None, False
        taking_over = notification.status == Notification.Status.SENDING and sending_is_stale(notification, now=now)
        if notification.status != Notification.Status.PENDING and not taking_over:
            return notification, None, False
        recipient = Recipient.objects.filter(pk=notification.user_id).first()
        if recipient is not None and not recipient.is_active:
            notification.status, notification.last_error = Notification.Status.SKIPPED, RECIPIENT_DEACTIVATED
            notification.save(update_fields=["status", "last_error"])
            return notification, recipient, False
        if taking_over:
            notification.last_error = POSSIBLY_SENT
            logger.warning("taking over a stale send", extra={"notification_id": notification_id})
        notification.status, notification.sending_since = Notification.Status.SENDING, now
        notification.attempts += 1
        notification.save(update_fields=["status", "sending_since", "attempts", "last_error"])
    return notification, recipient, True


def _as_transient(exc: Exception) -> TransientDeliveryError:
    if isinstance(exc, TransientDeliveryError):
        return exc
    logger.warning("unexpected delivery error, will be retried", exc_info=exc)
    failure = TransientDeliveryError(f"{type(exc).__name__}: {exc}")
    failure.__cause__ = exc
    return failure


def _finish(notification: Notification, *, status: str, error: str) -> Notification:
    """Record the outcome of a claimed send; only while the row is still this claim's (a takeover wins)."""
    notification.status, notification.last_error = status, error[:2000]
    notification.sent_at = timezone.now() if status == Notification.Status.SENT else None
    Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING, sending_since=notification.sending_since
    ).update(
        status=status,
        last_error=notification.last_error,
        sent_at=notification.sent_at,
        provider_message_id=notification.provider_message_id,
    )
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

    So do "sending" ones whose worker died mid-send (stale, see `sending_is_stale`): they go back
    to pending, marked possibly sent. Each is re-queued at most `max_requeues` times; one still
    pending after that fails (a dead letter an admin can resend) instead of being re-queued forever.
    """
    now = timezone.now()
    takeover = now - timedelta(seconds=settings.NOTIFICATION_SENDING_TAKEOVER_SECONDS)
    overdue = Q(status=Notification.Status.PENDING, next_attempt_at__lt=now - stuck_after)
    abandoned = Q(status=Notification.Status.SENDING, sending_since__lt=takeover)
    with transaction.atomic():
        stuck = list(
            Notification.objects.select_for_update(skip_locked=True)  # one being claimed right now is not stuck
            .filter(overdue | abandoned)
            .order_by("next_attempt_at")
            .values_list("pk", "requeues", "status")[:limit]
        )
        again = [pk for pk, requeues, _ in stuck if requeues < max_requeues]
        given_up = [pk for pk, requeues, _ in stuck if requeues >= max_requeues]
        mid_send = [pk for pk, _, status in stuck if status == Notification.Status.SENDING]
        Notification.objects.filter(pk__in=mid_send).update(
            status=Notification.Status.PENDING, last_error=POSSIBLY_SENT
        )
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


# --- Dead letters -------------------------------------------------------------


def letter_key(message) -> str:
    """A dead letter's identity: the message's event id, or a hash of a message that has no valid one."""
    event_id = message.get("event_id") if isinstance(message, dict) else None
    try:
        return str(uuid.UUID(str(event_id)))
    except ValueError:
        canonical = json.dumps(message, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:57]


def _about(message) -> dict:
    """What a message says about itself, as far as it can be read: name, event id, correlation id."""
    fields = message if isinstance(message, dict) else {}
    key = letter_key(message)
    return {
        "event_name": str(fields.get("name", ""))[:100],
        "event_id": None if key.startswith("sha256:") else key,
        "correlation_id": str(fields.get("correlation_id", ""))[:CORRELATION_ID_LENGTH],
    }


def store_dead_letter(
    *, message, reason: str, error: str, first_failed_at: str, last_failed_at: str, failure_id: str
) -> DeadLetter:
    """Keep `message` for an operator: one row per event; another failure of the same event is counted on it.

    A store redelivered by the broker (same `failure_id`) changes nothing; a letter replayed
    and failing again is dead again, its replay history kept.
    """
    first, last = parse_datetime(first_failed_at), parse_datetime(last_failed_at)
    with transaction.atomic():
        letter, created = DeadLetter.objects.get_or_create(
            key=letter_key(message),
            defaults={
                **_about(message),
                "message": message,
                "reason": reason,
                "error": error[:2000],
                "first_failed_at": first,
                "last_failed_at": last,
                "last_failure_id": failure_id,
            },
        )
        if created:
            return letter
        letter = DeadLetter.objects.select_for_update().get(pk=letter.pk)
        if letter.last_failure_id == failure_id:
            return letter
        letter.failures += 1
        letter.reason, letter.error, letter.status = reason, error[:2000], DeadLetter.Status.DEAD
        letter.last_failed_at, letter.last_failure_id = max(letter.last_failed_at, last), failure_id
        letter.first_failed_at = min(letter.first_failed_at, first)
        letter.save()
    return letter


@dataclass(frozen=True)
class ReplayOutcome:
    letter_id: int
    outcome: str  # "replayed", "rejected" (still unreadable), "failed" (the consumer raised) or "skipped"
    detail: str
    pending: tuple[int, ...] = ()  # notifications to queue for delivery


def replay_dead_letters(*, letter_ids: list[int] | None, by: str) -> list[ReplayOutcome]:
    """Consume dead letters again (all of them with `letter_ids` None), oldest first; each marked replayed.

    Idempotent: a replayed letter is skipped, and the consumer creates each event's
    notifications once, so replaying twice notifies once.
    """
    letters = DeadLetter.objects.order_by("first_failed_at", "pk")
    if letter_ids is not None:
        letters = letters.filter(pk__in=letter_ids)
    else:
        letters = letters.filter(status=DeadLetter.Status.DEAD)
    return [_replay(pk, by=by) for pk in letters.values_list("pk", flat=True)]


def _replay(letter_id: int, *, by: str) -> ReplayOutcome:
    try:
        with transaction.atomic():
            letter = DeadLetter.objects.select_for_update().get(pk=letter_id)
            if letter.status != DeadLetter.Status.DEAD:
                return ReplayOutcome(letter_id, "skipped", f"already replayed by {letter.replayed_by}")
            try:
                envelope, payload = events.parse_message(letter.message)
            except (events.UnknownEvent, events.UnsupportedEventVersion, ValidationError) as exc:
                _record_replay(letter, by=by, result=f"still rejected: {exc}"[:2000])
                return ReplayOutcome(letter_id, "rejected", str(exc))
            with correlation_scope(envelope.correlation_id):
                pending = notify_for_event(envelope, payload)
            letter.status = DeadLetter.Status.REPLAYED
            _record_replay(letter, by=by, result=f"replayed: {len(pending)} notification(s) to deliver")
            return ReplayOutcome(letter_id, "replayed", letter.replay_result, tuple(n.pk for n in pending))
    except DatabaseError:
        raise  # the database is the problem: the operator sees it, the letter stays dead
    except Exception as exc:
        DeadLetter.objects.filter(pk=letter_id).update(replay_result=f"replay failed: {type(exc).__name__}: {exc}")
        logger.exception("dead letter replay failed", extra={"dead_letter_id": letter_id})
        return ReplayOutcome(letter_id, "failed", f"{type(exc).__name__}: {exc}")


def _record_replay(letter: DeadLetter, *, by: str, result: str) -> None:
    letter.replays += 1
    letter.replayed_at, letter.replayed_by, letter.replay_result = timezone.now(), by[:150], result
    letter.save()
