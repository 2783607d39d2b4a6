"""Every read of notification_service that is more than a .get()."""

from __future__ import annotations

from django.db.models import QuerySet

from common.permissions import ADMIN
from notifications.errors import NotificationNotFound
from notifications.models import DeadLetter, Notification


def inbox(*, user_id: int, unread: bool | None = None, kind: str = "") -> QuerySet[Notification]:
    """A user's notifications, newest first."""
    notifications = Notification.objects.filter(user_id=user_id)
    if unread is not None:
        notifications = notifications.filter(read_at__isnull=unread)
    if kind:
        notifications = notifications.filter(kind=kind)
    return notifications


def get_notification_for(user, notification_id: int) -> Notification:
    """The notification if it is the caller's own or the caller is an admin; else NotificationNotFound."""
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None or (notification.user_id != user.id and user.role != ADMIN):
        raise NotificationNotFound()
    return notification


def delivery_backlog(*, cap: int) -> dict[str, int]:
    """Failed (dead) notifications, pending ones never tried and pending ones retrying, each counted up to cap + 1."""
    pending = Notification.objects.filter(status=Notification.Status.PENDING)
    counted = {
        "failed": Notification.objects.filter(status=Notification.Status.FAILED),
        "pending": pending.filter(attempts=0),
        "retrying": pending.filter(attempts__gt=0),  # a delivery attempt failed and another is due (or resent)
    }
    # Each an index range of notification_status_due, cut at cap + 1 rows: a backlog of millions is as cheap.
    return {name: rows.order_by()[: cap + 1].count() for name, rows in counted.items()}


def dead_letters_waiting(*, cap: int) -> int:
    """Dead letters not replayed yet, counted up to cap + 1 (an index range of dead_letter_status_age)."""
    return DeadLetter.objects.filter(status=DeadLetter.Status.DEAD).order_by()[: cap + 1].count()
