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
        SENT = "sent"
        FAILED = "failed"

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
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "user_id", "channel"], name="notification_once_per_event"),
            models.CheckConstraint(condition=Q(status__in=["pending", "sent", "failed"]), name="notification_status"),
            models.CheckConstraint(condition=Q(channel__in=list(CHANNELS)), name="notification_channel"),
        ]
        indexes = [
            models.Index(fields=["user_id", "-created_at", "-id"], name="notification_inbox"),
            models.Index(fields=["status", "next_attempt_at"], name="notification_status_due"),
            models.Index(fields=["kind"], name="notification_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.user_id} by {self.channel} ({self.status})"
