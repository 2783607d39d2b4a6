"""Delivery backends, one per channel, chosen in settings.NOTIFICATION_BACKENDS.

A backend's `send(notification, recipient)` returns the provider's message id,
raises TransientDeliveryError when a retry may succeed and
PermanentDeliveryError when it cannot.
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils.module_loading import import_string

from notifications.errors import PermanentDeliveryError, TransientDeliveryError
from notifications.models import Notification, Recipient

logger = logging.getLogger("lms.notifications")


class EmailBackend:
    """Email through Django's email backend (SMTP in production).

    Permanent: the server refused this message's recipient (5xx to RCPT) or its content
    (5xx to DATA); a retry would get the same answer. Everything else is transient and
    retried, then failed at the cap: 4xx replies, an unknown recipient, connection
    failures, and the refusals that come from our configuration or the server rather than
    from this message (authentication 535/530, HELO, the sender address), which would
    otherwise fail every email at once.
    """

    def send(self, notification: Notification, recipient: Recipient | None) -> str:
        if recipient is None:
            # loan.created may overtake user.registered (separate relays): the address may still arrive.
            raise TransientDeliveryError("recipient not known yet: no user event received for this user")
        if not recipient.email:
            raise PermanentDeliveryError("recipient has no email address")
        message_id = stable_message_id(notification)
        message = EmailMessage(
            subject=notification.subject,
            body=notification.body,
            to=[recipient.email],
            headers={"Message-ID": message_id, "X-Correlation-ID": notification.correlation_id},
            connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
        )
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            if all(_refuses_the_recipient(code) for code, _ in exc.recipients.values()):
                raise PermanentDeliveryError(f"recipient refused: {exc.recipients}") from exc
            raise TransientDeliveryError(f"recipient deferred: {exc.recipients}") from exc
        except smtplib.SMTPDataError as exc:
            reply = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
            if exc.smtp_code >= 500:
                raise PermanentDeliveryError(f"message refused: {reply}") from exc
            raise TransientDeliveryError(reply) from exc
        except smtplib.SMTPConnectError as exc:
            raise TransientDeliveryError(f"SMTP server unavailable: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            # Authentication, HELO or sender refused: the server or our settings, not this message.
            raise TransientDeliveryError(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
        return message_id


def stable_message_id(notification: Notification) -> str:
    """The notification's Message-ID, the same on every attempt: a copy sent again after a worker
    died mid-send carries it too, so receiving servers and mail clients can drop the duplicate.
    Unique as the notification is: event id (a UUID), recipient and channel.
    """
    return f"<{notification.event_id.hex}.{notification.user_id}.{notification.channel}@notifications.lms>"


def _refuses_the_recipient(code: int) -> bool:
    """A 5xx reply to RCPT, except 530 (authentication required: our configuration, not the address)."""
    return code >= 500 and code != 530


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


class LogOnlyBackend:
    """For channels without a provider configured (SMS, push): the message is logged, not sent anywhere."""

    def send(self, notification: Notification, recipient: Recipient | None) -> str:
        logger.info(
            "%s notification (no provider configured)",
            notification.channel,
            extra={"notification_id": notification.pk, "user_id": notification.user_id},
        )
        return f"log-{notification.pk}"


def backend_for(channel: str):
    """The configured backend instance of `channel`."""
    return import_string(settings.NOTIFICATION_BACKENDS[channel])()
