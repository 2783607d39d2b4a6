"""One row per Idempotency-Key a caller has used: the request's fingerprint and, once done, its reply."""

from django.db import models


class IdempotencyKey(models.Model):
    """A key in its caller's scope; the first request with it holds the lease, its reply is replayed.

    Of the request only a fingerprint is kept, never the body: replies that carry tokens come from
    views marked `idempotency = "exempt"`, which never reach this table.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"

    scope = models.CharField(max_length=255, help_text="Whose key: user:<id>, or anonymous:<client address>.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path, query string and body.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    lease = models.UUIDField(help_text="The request that runs it; a takeover gives a new one.")
    created_at = models.DateTimeField(help_text="First use; the key expires IDEMPOTENCY_KEY_TTL_SECONDS later.")
    locked_at = models.DateTimeField(
        help_text="Start of the running request; taken over after IDEMPOTENCY_LOCK_SECONDS."
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content_type = models.CharField(max_length=255, blank=True, default="")
    response_body = models.BinaryField(blank=True, default=b"")

    class Meta:
        constraints = [
            # Decides which of concurrent first requests runs: the others read its row.
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_uniq"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]  # purge_expired's DELETE

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
