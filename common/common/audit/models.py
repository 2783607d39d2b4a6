"""AuditEvent: one row per recorded event, never changed or removed by the application.

Three locks keep it append-only: the queryset and the model refuse update and delete (AppendOnly),
the admin is read-only, and a database trigger (migration 0001) refuses UPDATE and DELETE for any
client, raw SQL included. TRUNCATE stays possible: it is the database owner's, not the application's.
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from common.correlation import MAX_LENGTH as CORRELATION_ID_MAX_LENGTH

EVENT_MAX_LENGTH = 64
REASON_MAX_LENGTH = 64
SUBJECT_TYPE_MAX_LENGTH = 32
SUBJECT_ID_MAX_LENGTH = 64
USER_AGENT_MAX_LENGTH = 512


class AppendOnly(RuntimeError):
    """An attempt to change or remove an audit row: a programming error, never a client's."""

    def __init__(self, what: str) -> None:
        super().__init__(f"The audit trail is append-only: {what} is refused.")


class AuditEventQuerySet(models.QuerySet):
    """Reads like any queryset; every bulk write but insert raises AppendOnly."""

    def update(self, **kwargs):
        raise AppendOnly("update")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnly("bulk_update")

    def delete(self):
        raise AppendOnly("delete")

    def _raw_delete(self, using):
        raise AppendOnly("delete")

    def update_or_create(self, defaults=None, create_defaults=None, **kwargs):
        raise AppendOnly("update_or_create")


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"

    id = models.BigAutoField(primary_key=True)
    # The Python default for the ORM's inserts, the database's for any other writer.
    occurred_at = models.DateTimeField(default=timezone.now, db_default=Now())
    event = models.CharField(max_length=EVENT_MAX_LENGTH, help_text='A dotted slug, e.g. "loan.approved".')
    outcome = models.CharField(max_length=7, choices=Outcome.choices, default=Outcome.SUCCESS)
    reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True, default="", help_text='e.g. "wrong_password".')
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="user_service's id; empty: anonymous.")
    subject_type = models.CharField(max_length=SUBJECT_TYPE_MAX_LENGTH, blank=True, default="")
    # A string, so that any subject's key fits: a user's or a loan's id, an API key's id.
    subject_id = models.CharField(max_length=SUBJECT_ID_MAX_LENGTH, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=USER_AGENT_MAX_LENGTH, blank=True, default="")
    correlation_id = models.CharField(max_length=CORRELATION_ID_MAX_LENGTH, blank=True, default="")
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        # Newest first, the id breaking ties: the order of the list API's cursor pages, each filter's
        # index ending with the same two columns.
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["-occurred_at", "-id"], name="audit_time_idx"),
            models.Index(fields=["actor_id", "-occurred_at", "-id"], name="audit_actor_idx"),
            models.Index(fields=["subject_id", "-occurred_at", "-id"], name="audit_subject_idx"),
            models.Index(fields=["event", "-occurred_at", "-id"], name="audit_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} ({self.outcome}) #{self.pk}"

    def save(self, *args, **kwargs):
        """Insert only: saving a row read from the table would change it."""
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise AppendOnly("changing a row")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("delete")
