"""The transactional outbox: events written in the same transaction as the change they announce."""

from django.db import models


class OutboxMessage(models.Model):
    """One event waiting to be (or already) handed to the broker."""

    event_id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=64)
    message = models.JSONField(help_text="The whole envelope, as sent.")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # The W3C traceparent of the span that wrote the event (tracing on, common.tracing): the relay sends the
    # event as its child, so the consumer's work joins the trace of the change. Null with tracing off.
    traceparent = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay's query: unsent rows, oldest first.
            models.Index(
                fields=["created_at"],
                name="outbox_unsent_idx",
                condition=models.Q(sent_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.event_id}"
