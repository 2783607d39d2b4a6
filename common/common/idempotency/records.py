"""Claiming, finishing and releasing Idempotency-Key records; every write is one conditional statement.

A record's `lease` says which request may finish it: a takeover (a key expired, or left running by a
process that died) writes a new lease, so the request that lost it can no longer record a reply.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from enum import Enum

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from common.idempotency import DEFAULT_KEY_TTL_SECONDS, DEFAULT_LOCK_SECONDS
from common.idempotency.models import IdempotencyKey

logger = logging.getLogger("lms.idempotency")

# A record can vanish or change between reading it and acting on it (released, purged, taken over):
# read again this many times before answering "in progress".
CLAIM_ATTEMPTS = 3


class Outcome(Enum):
    RUN = "run"  # this request holds the lease: run the view
    REPLAY = "replay"  # done before with the same request: answer its reply
    IN_PROGRESS = "in_progress"  # the first request is still running
    REUSED = "reused"  # the key was used for a different request


def key_ttl() -> timedelta:
    """How long a key replays after its first use (IDEMPOTENCY_KEY_TTL_SECONDS)."""
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_KEY_TTL_SECONDS", DEFAULT_KEY_TTL_SECONDS))


def lock_timeout() -> timedelta:
    """How long a running request keeps its key before another may take it over (IDEMPOTENCY_LOCK_SECONDS)."""
    return timedelta(seconds=getattr(settings, "IDEMPOTENCY_LOCK_SECONDS", DEFAULT_LOCK_SECONDS))


def claim(*, scope: str, key: str, fingerprint: str) -> tuple[Outcome, IdempotencyKey | None]:
    """What to do with a request carrying this key: run it (holding the record), replay, or refuse."""
    for _ in range(CLAIM_ATTEMPTS):
        now = timezone.now()
        record = IdempotencyKey.objects.filter(scope=scope, key=key).first()
        if record is None:
            record = _insert(scope=scope, key=key, fingerprint=fingerprint, now=now)
            if record is not None:
                return Outcome.RUN, record
            continue  # another request inserted it first: read its row
        if record.created_at <= now - key_ttl():
            taken = _take_over(record, fingerprint=fingerprint, now=now, created_at=now)
        elif record.fingerprint != fingerprint:
            return Outcome.REUSED, record
        elif record.status == IdempotencyKey.Status.DONE:
            return Outcome.REPLAY, record
        elif record.locked_at <= now - lock_timeout():
            taken = _take_over(record, fingerprint=fingerprint, now=now, created_at=record.created_at)
        else:
            return Outcome.IN_PROGRESS, record
        if taken is not None:
            return Outcome.RUN, taken
    return Outcome.IN_PROGRESS, None


def _insert(*, scope: str, key: str, fingerprint: str, now: datetime) -> IdempotencyKey | None:
    try:
        with transaction.atomic():  # its own short transaction: the lease is visible before the work starts
            return IdempotencyKey.objects.create(
                scope=scope, key=key, fingerprint=fingerprint, lease=uuid.uuid4(), created_at=now, locked_at=now
            )
    except IntegrityError:
        return None


def _take_over(
    record: IdempotencyKey, *, fingerprint: str, now: datetime, created_at: datetime
) -> IdempotencyKey | None:
    """The record with a new lease, if no one changed it since it was read; else None."""
    changes = {
        "fingerprint": fingerprint,
        "status": IdempotencyKey.Status.RUNNING,
        "lease": uuid.uuid4(),
        "created_at": created_at,
        "locked_at": now,
        "response_status": None,
        "response_content_type": "",
        "response_body": b"",
    }
    taken = IdempotencyKey.objects.filter(pk=record.pk, lease=record.lease, status=record.status).update(**changes)
    if not taken:
        return None
    for field, value in changes.items():
        setattr(record, field, value)
    return record


def finish(record: IdempotencyKey, *, status: int, content_type: str, body: bytes) -> bool:
    """Store the reply, in the transaction of the work; False if the lease was lost (the work must roll back)."""
    return bool(
        IdempotencyKey.objects.filter(pk=record.pk, lease=record.lease, status=IdempotencyKey.Status.RUNNING).update(
            status=IdempotencyKey.Status.DONE,
            response_status=status,
            response_content_type=content_type[:255],
            response_body=body,
        )
    )


def release(record: IdempotencyKey) -> None:
    """Delete a record whose reply is not kept (5xx, 429), so the client may retry; best effort."""
    try:
        IdempotencyKey.objects.filter(pk=record.pk, lease=record.lease, status=IdempotencyKey.Status.RUNNING).delete()
    except DatabaseError:
        # Left running, the record is taken over once IDEMPOTENCY_LOCK_SECONDS have passed.
        logger.warning("idempotency key not released", exc_info=True, extra={"key": record.key})


def purge_expired(*, now: datetime | None = None) -> int:
    """Delete every key older than IDEMPOTENCY_KEY_TTL_SECONDS, in one DELETE; returns how many went."""
    cutoff = (now or timezone.now()) - key_ttl()
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=cutoff).delete()
    return deleted
