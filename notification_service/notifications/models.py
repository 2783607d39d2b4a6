"""Recipients (a local copy of user_service's contact data) and notifications, one per recipient and channel."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from common import correlation
from notifications.delivery_policy import CHANNELS

CORRELATION_ID_LENGTH = correlation.MAX_LENGTH  # the longest client id common.correlation keeps


class Recipient(models.Model):
    """What this service knows of a user, from the user events; it never asks user_service to send."""

    user_id = models.BigIntegerField(primary_key=True)
    email = models.EmailField(blank=True, default="")
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    role = models.CharField(max_length=16, blank=True, default="")
    # user.deactivated: nothing more is delivered to them (their notifications are created "skipped").
    is_active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # When the user event this copy was last refreshed from happened: an older event arriving late changes nothing.
    as_of = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id} <{self.email}>"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email"
        SMS = "sms"
        PUSH = "push"
        IN_APP = "in_app"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"  # claimed by a worker, committed before it talks to the provider
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"  # never delivered: the recipient was deactivated

    # The event that caused it (or a fresh id for an admin's message): with the
    # recipient and channel it is unique, which makes every consumer idempotent.
    event_id = models.UUIDField(default=uuid.uuid4)
    user_id = models.BigIntegerField()
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=40)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    provider_message_id = models.CharField(max_length=200, blank=True, default="")
    correlation_id = models.CharField(max_length=CORRELATION_ID_LENGTH, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # When its next delivery attempt is due: set each time it is queued (or a retry is scheduled).
    # A pending row long past it lost its task, and the sweep queues it again, at most a few times.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    requeues = models.PositiveIntegerField(default=0)
    # When a worker claimed it for sending: a row "sending" long past this lost its worker mid-send.
    sending_since = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "user_id", "channel"], name="notification_once_per_event"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sending", "sent", "failed", "skipped"]), name="notification_status"
            ),
            models.CheckConstraint(condition=Q(channel__in=list(CHANNELS)), name="notification_channel"),
        ]
        indexes = [
            models.Index(fields=["user_id", "-created_at", "-id"], name="notification_inbox"),
            models.Index(fields=["status", "next_attempt_at"], name="notification_status_due"),
            models.Index(fields=["kind"], name="notification_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.user_id} by {self.channel} ({self.status})"


class DeadLetter(models.Model):
    """An event the consumer could not turn into notifications, kept for an operator to replay.

    Stored by the dead-letter task once the database answers (its retries have no limit), so a
    long outage cannot lose it. One row per event: dead-lettering the same event again counts
    a failure on it. A replayed letter is kept, marked with when and by whom.
    """

    class Reason(models.TextChoices):
        DATABASE_UNAVAILABLE = "database_unavailable"  # the database errors outlasted the consumer's retries
        REJECTED = "rejected"  # unknown name, unsupported version or a payload that fails its schema
        ERROR = "error"  # any other error of the consumer (a bug): replay once it is fixed

    class Status(models.TextChoices):
        DEAD = "dead"
        REPLAYED = "replayed"

    key = models.CharField(max_length=64, unique=True)  # the event id, or a hash of a message without a valid one
    event_id = models.UUIDField(null=True, blank=True)
    event_name = models.CharField(max_length=100, blank=True, default="")
    correlation_id = models.CharField(max_length=CORRELATION_ID_LENGTH, blank=True, default="")
    message = models.JSONField()  # the message exactly as it was received: what a replay consumes
    reason = models.CharField(max_length=24, choices=Reason.choices)
    error = models.TextField(blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DEAD)
    failures = models.PositiveIntegerField(default=1)
    last_failure_id = models.CharField(max_length=32, blank=True, default="")  # a redelivered store counts once
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    replays = models.PositiveIntegerField(default=0)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.CharField(max_length=150, blank=True, default="")
    replay_result = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-last_failed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["dead", "replayed"]), name="dead_letter_status"),
        ]
        indexes = [models.Index(fields=["status", "last_failed_at"], name="dead_letter_status_age")]

    def __str__(self) -> str:
        return f"{self.event_name or '?'} {self.event_id or self.key[:12]} ({self.reason}, {self.status})"
